// Discovery and host:port addresses given on the command line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace wideserve::config {

// Default registry address of embedded discovery (one host, no etcd).
inline constexpr std::string_view kDefaultDiscovery = "embedded://127.0.0.1:29400";
inline constexpr int kDefaultDiscoveryPort = 29400;

// A parsed --discovery value: the embedded registry's TCP address. Accepted spellings (as
// runtime/discovery.h): embedded://HOST:PORT, embedded://HOST (port 29400), HOST:PORT.
struct DiscoveryAddress {
  std::string scheme;  // "embedded"
  std::string host;
  int port = 0;
};

// Parses "HOST:PORT" (HOST non-empty, PORT in [min_port, 65535]; IPv6 as [addr]:port); throws
// Error(kInvalidArgument) naming `flag`.
void parse_host_port(std::string_view flag, std::string_view value, std::string& host, int& port,
                     int min_port = 1);

// Parses a --discovery value; etcd:// is Error(kUnimplemented) (cluster runtime issue), anything
// else malformed is Error(kInvalidArgument) naming `flag`.
DiscoveryAddress parse_discovery(std::string_view flag, std::string_view value);

}  // namespace wideserve::config
