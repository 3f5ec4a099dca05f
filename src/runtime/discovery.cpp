#include "runtime/discovery.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/check.h"
#include "runtime/embedded_discovery.h"

namespace wideserve::runtime {
namespace {

constexpr const char* kExpected = "expected embedded://host:port or host:port";

}  // namespace

std::string DiscoveryUrl::tcp_endpoint() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("tcp://{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

std::string DiscoveryUrl::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("embedded://{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port);
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
    if (scheme == "etcd")
      WS_THROW(kUnimplemented, "not supported yet: --discovery etcd (cluster runtime issue)");
    WS_CHECK_ARG(scheme == "embedded", "--discovery '{}': unknown scheme '{}' ({})", url, scheme,
                 kExpected);
    rest = url.substr(sep + 3);
    port_required = false;
  }
  DiscoveryUrl out;
  std::string port_text;
  if (!rest.empty() && rest[0] == '[') {
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
  WS_CHECK_ARG(out.host.find_first_of("/?#@ ") == std::string::npos,
               "--discovery '{}': bad host '{}' ({})", url, out.host, kExpected);
  if (!port_text.empty() || rest.back() == ':') {  // rest holds at least the host here
    bool digits = !port_text.empty() && port_text.size() <= 5 &&
                  std::all_of(port_text.begin(), port_text.end(),
                              [](unsigned char c) { return std::isdigit(c); });
    WS_CHECK_ARG(digits && std::stoul(port_text) <= 65535, "--discovery '{}': bad port '{}' ({})",
                 url, port_text, kExpected);
    out.port = static_cast<uint16_t>(std::stoul(port_text));
  }
  return out;
}

std::unique_ptr<WorkerWatcher> make_worker_watcher(const std::string& url, WatcherOptions opts,
                                                   WatcherCallbacks cb) {
  DiscoveryUrl u = parse_discovery_url(url);
  return std::make_unique<EmbeddedRegistry>(u, opts, std::move(cb));
}

std::unique_ptr<WorkerRegistration> make_worker_registration(const std::string& url,
                                                             WorkerInfo info,
                                                             std::function<WorkerLoad()> load_fn,
                                                             RegistrationOptions opts) {
  DiscoveryUrl u = parse_discovery_url(url);
  return std::make_unique<EmbeddedRegistration>(u, std::move(info), std::move(load_fn), opts);
}

}  // namespace wideserve::runtime
