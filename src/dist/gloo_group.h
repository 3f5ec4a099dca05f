// Gloo process group over TCP: ranks in any processes/hosts meet at a TcpStore, then talk over a
// full mesh of TCP pairs.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "dist/process_group.h"

namespace wideserve::dist {

// Where and how a rank joins.
struct GlooOptions {
  std::string store_host = "127.0.0.1";  // --dist-init-addr host (the TcpStoreServer)
  int store_port = 0;
  std::string bind_host;      // this rank's interface; empty = 127.0.0.1 for a local store, else
                              // the host name's address
  std::string prefix = "ws";  // key prefix of this group in the store (one group per prefix)
  std::chrono::milliseconds timeout = std::chrono::minutes(5);  // rendezvous and collectives
};

// Connects rank `rank` of `size`; returns when all ranks have joined (or throws kUnavailable).
std::unique_ptr<ProcessGroup> make_gloo_group(int rank, int size, const GlooOptions& opts);

}  // namespace wideserve::dist
