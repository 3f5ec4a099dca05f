#include "config/discovery.h"

#include <charconv>

#include "common/check.h"

namespace wideserve::config {
namespace {

constexpr std::string_view kEtcdForm = "etcd://HOST[:PORT][,HOST[:PORT]...][?lease_ttl_s=N]";

// One etcd endpoint: HOST, HOST:PORT, [V6] or [V6]:PORT.
HostPort parse_etcd_endpoint(std::string_view flag, std::string_view value, std::string_view one) {
  WS_CHECK_ARG(!one.empty(), "{}: empty etcd endpoint in '{}' ({})", flag, value, kEtcdForm);
  const bool bracketed = one.front() == '[';
  const bool has_port = bracketed ? one.find("]:") != std::string_view::npos
                                  : one.find(':') != std::string_view::npos;
  HostPort hp;
  if (has_port) {
    parse_host_port(flag, one, hp.host, hp.port);
    return hp;
  }
  WS_CHECK_ARG(!bracketed || (one.size() > 2 && one.back() == ']'), "{}: bad IPv6 host in '{}'",
               flag, value);
  hp.host = std::string(bracketed ? one.substr(1, one.size() - 2) : one);
  hp.port = kDefaultEtcdPort;
  WS_CHECK_ARG(hp.host.find_first_of("/?#@ ") == std::string::npos, "{}: bad host '{}' in '{}'",
               flag, hp.host, value);
  return hp;
}

DiscoveryAddress parse_etcd(std::string_view flag, std::string_view value, std::string_view rest) {
  DiscoveryAddress d;
  d.scheme = "etcd";
  const size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      std::string_view kv = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (kv.empty()) continue;
      const size_t eq = kv.find('=');
      std::string_view name = kv.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
      WS_CHECK_ARG(name == "lease_ttl_s", "{}: unknown parameter '{}' in '{}' ({})", flag, name,
                   value, kEtcdForm);
      int64_t ttl = -1;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), ttl);
      WS_CHECK_ARG(ec == std::errc() && ptr == v.data() + v.size() && ttl >= 1 && ttl <= 86400,
                   "{}: lease_ttl_s must be seconds in [1, 86400] (got '{}')", flag, v);
      d.lease_ttl_s = ttl;
    }
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  for (;;) {
    const size_t comma = rest.find(',');
    d.endpoints.push_back(parse_etcd_endpoint(flag, value, rest.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  d.host = d.endpoints.front().host;
  d.port = d.endpoints.front().port;
  return d;
}

}  // namespace

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
    if (scheme == "etcd") return parse_etcd(flag, value, value.substr(sep + 3));
    WS_CHECK_ARG(scheme == "embedded",
                 "{}: unknown discovery scheme '{}' in '{}' (embedded://HOST[:PORT], HOST:PORT or "
                 "{})",
                 flag, scheme, value, kEtcdForm);
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

std::string apply_discovery_lease_ttl(const std::string& discovery, DiscoveryAddress& addr,
                                      const std::optional<int64_t>& lease_ttl_s,
                                      std::vector<std::string>& warnings) {
  if (lease_ttl_s)
    WS_CHECK_ARG(*lease_ttl_s >= 1 && *lease_ttl_s <= 86400,
                 "--discovery-lease-ttl-s must be in [1, 86400] (got {})", *lease_ttl_s);
  if (addr.scheme != "etcd") {
    if (lease_ttl_s)
      warnings.push_back(
          "--discovery-lease-ttl-s applies to etcd:// discovery only (ignored with " + discovery +
          ")");
    return discovery;
  }
  if (!lease_ttl_s) {
    if (addr.lease_ttl_s == 0) addr.lease_ttl_s = kDefaultDiscoveryLeaseTtlS;
    return discovery;
  }
  if (addr.lease_ttl_s != 0) {
    WS_CHECK_ARG(addr.lease_ttl_s == *lease_ttl_s,
                 "--discovery-lease-ttl-s {} disagrees with lease_ttl_s={} in --discovery {}",
                 *lease_ttl_s, addr.lease_ttl_s, discovery);
    return discovery;
  }
  addr.lease_ttl_s = *lease_ttl_s;
  // The TTL travels inside the URL: runtime::make_worker_registration reads it from there.
  return discovery + (discovery.find('?') == std::string::npos ? "?" : "&") +
         "lease_ttl_s=" + std::to_string(*lease_ttl_s);
}

}  // namespace wideserve::config
