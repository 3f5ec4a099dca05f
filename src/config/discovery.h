// Discovery and host:port addresses given on the command line (--discovery, its lease TTL).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::config {

// Default registry address of embedded discovery (one host, no etcd).
inline constexpr std::string_view kDefaultDiscovery = "embedded://127.0.0.1:29400";
inline constexpr int kDefaultDiscoveryPort = 29400;

// etcd://HOST without a port means etcd's client port.
inline constexpr int kDefaultEtcdPort = 2379;
// Lease TTL of etcd registrations when neither --discovery-lease-ttl-s nor the URL set one.
inline constexpr int64_t kDefaultDiscoveryLeaseTtlS = 10;

// One HOST:PORT.
struct HostPort {
  std::string host;
  int port = 0;
};

// A parsed --discovery value. Accepted spellings (as runtime/discovery.h):
// embedded://HOST:PORT, embedded://HOST (port 29400), HOST:PORT, and
// etcd://HOST[:PORT][,HOST[:PORT]...][?lease_ttl_s=N] (port 2379).
struct DiscoveryAddress {
  std::string scheme;  // "embedded" or "etcd"
  std::string host;    // embedded: the registry; etcd: the first endpoint
  int port = 0;
  std::vector<HostPort> endpoints;  // etcd: every endpoint, in failover order
  int64_t lease_ttl_s = 0;          // etcd: ?lease_ttl_s=N (0 = not in the URL)
};

// Parses "HOST:PORT" (HOST non-empty, PORT in [min_port, 65535]; IPv6 as [addr]:port); throws
// Error(kInvalidArgument) naming `flag`.
void parse_host_port(std::string_view flag, std::string_view value, std::string& host, int& port,
                     int min_port = 1);

// Parses a --discovery value; anything malformed (or another scheme) is Error(kInvalidArgument)
// naming `flag`.
DiscoveryAddress parse_discovery(std::string_view flag, std::string_view value);

// Validates --discovery-lease-ttl-s against the parsed --discovery and returns the --discovery
// value the processes should use: for etcd, the URL with ?lease_ttl_s=N when the flag gives N
// (the URL's own value must then agree); for embedded, `discovery` unchanged, with a warning
// appended when the flag is given (it applies to etcd only).
std::string apply_discovery_lease_ttl(const std::string& discovery, DiscoveryAddress& addr,
                                      const std::optional<int64_t>& lease_ttl_s,
                                      std::vector<std::string>& warnings);

}  // namespace wideserve::config
