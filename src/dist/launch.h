// Starting this process's ranks of a multi-rank engine: N ranks over K nodes (processes or
// hosts), node R hosting ranks [R * N / K, (R + 1) * N / K). One node without --dist-init-addr:
// thread ranks. Otherwise Gloo over TCP, rendezvous at the store that node 0 serves at
// --dist-init-addr.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dist/process_group.h"
#include "dist/tcp_store.h"

namespace wideserve::dist {

struct LaunchOptions {
  int world_size = 1;          // ranks in all (--tp-size with --enable-dp-attention)
  int nnodes = 1;              // --nnodes
  int node_rank = 0;           // --node-rank
  std::string dist_init_addr;  // --dist-init-addr HOST:PORT
  std::string prefix = "ws";   // store key prefix (one group per prefix)
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
};

// This process's ranks, connected.
struct LocalRanks {
  int first_rank = 0;
  std::vector<std::unique_ptr<ProcessGroup>> groups;  // ranks first_rank, first_rank + 1, ...
  std::unique_ptr<TcpStoreServer> server;             // node 0 with Gloo
  std::string backend;                                // "threads" or "gloo"
};

// Validates the options (world divisible by nodes, address given for several nodes) and
// connects every local rank (in parallel, so that rendezvous completes).
LocalRanks launch_local_ranks(const LaunchOptions& o);

}  // namespace wideserve::dist
