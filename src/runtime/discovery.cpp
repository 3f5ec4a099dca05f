#include "runtime/discovery.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/check.h"
#include "runtime/embedded_discovery.h"
#include "runtime/etcd_discovery.h"

namespace wideserve::runtime {
namespace {

constexpr const char* kExpected =
    "expected embedded://host:port, host:port or etcd://host:port[,host:port...]";

std::string bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

bool all_digits(const std::string& s, size_t max_len) {
  return !s.empty() && s.size() <= max_len &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// One "host[:port]" or "[v6][:port]"; the port is `default_port` when absent and allowed.
DiscoveryEndpoint parse_endpoint(const std::string& url, const std::string& rest,
                                 bool port_required, uint16_t default_port) {
  DiscoveryEndpoint out;
  out.port = default_port;
  std::string port_text;
  WS_CHECK_ARG(!rest.empty(), "--discovery '{}': no host ({})", url, kExpected);
  if (rest[0] == '[') {
    auto close = rest.find(']');
    WS_CHECK_ARG(close != std::string::npos, "--discovery '{}': unclosed '[' ({})", url, kExpected);
    out.host = rest.substr(1, close - 1);
    std::string after = rest.substr(close + 1);
    WS_CHECK_ARG(after.empty() || after[0] == ':', "--discovery '{}': bad address ({})", url,
                 kExpected);
    if (!after.empty())
      port_text = after.substr(1);
    else
      WS_CHECK_ARG(!port_required, "--discovery '{}': no port ({})", url, kExpected);
  } else {
    auto colon = rest.find(':');
    WS_CHECK_ARG(colon == std::string::npos || rest.find(':', colon + 1) == std::string::npos,
                 "--discovery '{}': write IPv6 hosts in brackets ({})", url, kExpected);
    if (colon == std::string::npos) {
      WS_CHECK_ARG(!port_required, "--discovery '{}': no port ({})", url, kExpected);
      out.host = rest;
    } else {
      out.host = rest.substr(0, colon);
      port_text = rest.substr(colon + 1);
    }
  }
  WS_CHECK_ARG(!out.host.empty(), "--discovery '{}': no host ({})", url, kExpected);
  WS_CHECK_ARG(out.host.find_first_of("/?#@ ,") == std::string::npos,
               "--discovery '{}': bad host '{}' ({})", url, out.host, kExpected);
  if (!port_text.empty() || rest.back() == ':') {  // rest holds at least the host here
    WS_CHECK_ARG(all_digits(port_text, 5) && std::stoul(port_text) <= 65535,
                 "--discovery '{}': bad port '{}' ({})", url, port_text, kExpected);
    out.port = static_cast<uint16_t>(std::stoul(port_text));
  }
  return out;
}

// etcd://h1[:p1],h2[:p2][?lease_ttl_s=N] (after the scheme).
DiscoveryUrl parse_etcd(const std::string& url, std::string rest) {
  DiscoveryUrl out;
  out.kind = DiscoveryUrl::Kind::kEtcd;
  auto q = rest.find('?');
  if (q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      pos = amp == std::string::npos ? query.size() + 1 : amp + 1;
      if (kv.empty()) continue;
      auto eq = kv.find('=');
      std::string name = kv.substr(0, eq);
      std::string value = eq == std::string::npos ? "" : kv.substr(eq + 1);
      WS_CHECK_ARG(name == "lease_ttl_s",
                   "--discovery '{}': unknown parameter '{}' (etcd:// takes lease_ttl_s)", url,
                   name);
      WS_CHECK_ARG(all_digits(value, 6) && std::stol(value) >= 1 && std::stol(value) <= 86400,
                   "--discovery '{}': lease_ttl_s must be seconds in [1, 86400] (got '{}')", url,
                   value);
      out.lease_ttl_s = std::stol(value);
    }
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t comma = rest.find(',', pos);
    std::string one =
        rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? rest.size() + 1 : comma + 1;
    DiscoveryEndpoint ep = parse_endpoint(url, one, false, kDefaultEtcdPort);
    WS_CHECK_ARG(ep.port != 0, "--discovery '{}': etcd port 0 ({})", url, kExpected);
    out.endpoints.push_back(std::move(ep));
  }
  out.host = out.endpoints.front().host;
  out.port = out.endpoints.front().port;
  return out;
}

}  // namespace

std::string DiscoveryUrl::tcp_endpoint() const {
  return fmt::format("tcp://{}:{}", bracketed(host), port);
}

std::string DiscoveryUrl::to_string() const {
  if (kind == Kind::kEmbedded) return fmt::format("embedded://{}:{}", bracketed(host), port);
  std::string out = "etcd://";
  for (size_t i = 0; i < endpoints.size(); ++i)
    out += fmt::format("{}{}:{}", i ? "," : "", bracketed(endpoints[i].host), endpoints[i].port);
  if (lease_ttl_s != kDefaultLeaseTtlS) out += fmt::format("?lease_ttl_s={}", lease_ttl_s);
  return out;
}

DiscoveryUrl parse_discovery_url(const std::string& url) {
  WS_CHECK_ARG(!url.empty(), "--discovery is empty ({})", kExpected);
  std::string rest = url;
  bool port_required = true;
  auto sep = url.find("://");
  if (sep != std::string::npos) {
    std::string scheme = url.substr(0, sep);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (scheme == "etcd") return parse_etcd(url, url.substr(sep + 3));
    WS_CHECK_ARG(scheme == "embedded", "--discovery '{}': unknown scheme '{}' ({})", url, scheme,
                 kExpected);
    rest = url.substr(sep + 3);
    port_required = false;
  }
  WS_CHECK_ARG(rest.find(',') == std::string::npos,
               "--discovery '{}': several addresses are for etcd:// only ({})", url, kExpected);
  DiscoveryEndpoint ep = parse_endpoint(url, rest, port_required, kDefaultDiscoveryPort);
  DiscoveryUrl out;
  out.host = std::move(ep.host);
  out.port = ep.port;
  return out;
}

std::unique_ptr<WorkerWatcher> make_worker_watcher(const std::string& url, WatcherOptions opts,
                                                   WatcherCallbacks cb) {
  DiscoveryUrl u = parse_discovery_url(url);
  if (u.kind == DiscoveryUrl::Kind::kEtcd)
    return std::make_unique<EtcdWatcher>(u, opts, std::move(cb));
  return std::make_unique<EmbeddedRegistry>(u, opts, std::move(cb));
}

std::unique_ptr<WorkerRegistration> make_worker_registration(const std::string& url,
                                                             WorkerInfo info,
                                                             std::function<WorkerLoad()> load_fn,
                                                             RegistrationOptions opts) {
  DiscoveryUrl u = parse_discovery_url(url);
  if (u.kind == DiscoveryUrl::Kind::kEtcd)
    return std::make_unique<EtcdRegistration>(u, std::move(info), std::move(load_fn), opts);
  return std::make_unique<EmbeddedRegistration>(u, std::move(info), std::move(load_fn), opts);
}

}  // namespace wideserve::runtime
