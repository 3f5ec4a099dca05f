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
  const size_t sep = value.find("://");
  WS_CHECK_ARG(sep != std::string_view::npos, "{} must look like embedded://HOST:PORT (got '{}')",
               flag, value);
  DiscoveryAddress d;
  d.scheme = std::string(value.substr(0, sep));
  if (d.scheme == "etcd")
    WS_THROW(kUnimplemented, "not supported yet: {} {} (cluster runtime issue; use embedded://)",
             flag, value);
  WS_CHECK_ARG(d.scheme == "embedded", "{}: unknown discovery scheme '{}' in '{}' (embedded)", flag,
               d.scheme, value);
  std::string_view rest = value.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  parse_host_port(flag, rest, d.host, d.port);
  return d;
}

}  // namespace wideserve::config
