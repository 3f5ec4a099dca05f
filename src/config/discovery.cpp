#include "config/discovery.h"

#include <charconv>

#include "common/check.h"

namespace wideserve::config {

void parse_host_port(std::string_view flag, std::string_view value, std::string& host, int& port,
                     int min_port) {
  size_t colon = value.rfind(':');
  WS_CHECK_ARG(colon != std::string_view::npos && colon > 0 && colon + 1 < value.size(),
               "{} must be HOST:PORT (got '{}')", flag, value);
  std::string_view h = value.substr(0, colon);
  if (h.front() == '[') {
    WS_CHECK_ARG(h.size() > 2 && h.back() == ']', "{}: bad IPv6 host in '{}'", flag, value);
    h = h.substr(1, h.size() - 2);
  } else {
    WS_CHECK_ARG(h.find(':') == std::string_view::npos,
                 "{}: write an IPv6 host as [ADDR]:PORT (got '{}')", flag, value);
  }
  std::string_view p = value.substr(colon + 1);
  int v = -1;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  WS_CHECK_ARG(ec == std::errc() && ptr == p.data() + p.size() && v >= min_port && v <= 65535,
               "{}: port must be an integer in [{}, 65535] (got '{}')", flag, min_port, p);
  host = std::string(h);
  port = v;
}

DiscoveryAddress parse_discovery(std::string_view flag, std::string_view value) {
  DiscoveryAddress d;
  d.scheme = "embedded";
  std::string_view rest = value;
  const size_t sep = value.find("://");
  if (sep != std::string_view::npos) {
    const std::string scheme(value.substr(0, sep));
    if (scheme == "etcd")
      WS_THROW(kUnimplemented, "not supported yet: {} {} (cluster runtime issue; use embedded://)",
               flag, value);
    WS_CHECK_ARG(scheme == "embedded",
                 "{}: unknown discovery scheme '{}' in '{}' (embedded://HOST[:PORT] or HOST:PORT)",
                 flag, scheme, value);
    rest = value.substr(sep + 3);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    // embedded://HOST means the default registry port.
    const bool bracketed = !rest.empty() && rest.front() == '[';
    const bool has_port = bracketed ? rest.find("]:") != std::string_view::npos
                                    : rest.find(':') != std::string_view::npos;
    if (!has_port && !rest.empty()) {
      WS_CHECK_ARG(!bracketed || rest.back() == ']', "{}: bad IPv6 host in '{}'", flag, value);
      d.host = std::string(bracketed ? rest.substr(1, rest.size() - 2) : rest);
      d.port = kDefaultDiscoveryPort;
      WS_CHECK_ARG(!d.host.empty(), "{}: empty host in '{}'", flag, value);
      return d;
    }
  }
  WS_CHECK_ARG(!rest.empty(), "{} must be embedded://HOST[:PORT] or HOST:PORT (got '{}')", flag,
               value);
  parse_host_port(flag, rest, d.host, d.port);
  return d;
}

}  // namespace wideserve::config
