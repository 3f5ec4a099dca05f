#include "dist/launch.h"

#include <exception>
#include <thread>

#include "common/check.h"
#include "common/logging.h"
#include "dist/gloo_group.h"
#include "dist/thread_group.h"

namespace wideserve::dist {

LocalRanks launch_local_ranks(const LaunchOptions& o) {
  WS_CHECK_ARG(o.world_size >= 1, "{} ranks", o.world_size);
  WS_CHECK_ARG(o.nnodes >= 1 && o.world_size % o.nnodes == 0,
               "{} ranks cannot be spread evenly over --nnodes {}", o.world_size, o.nnodes);
  WS_CHECK_ARG(o.node_rank >= 0 && o.node_rank < o.nnodes, "--node-rank {} outside [0, {})",
               o.node_rank, o.nnodes);
  const int per = o.world_size / o.nnodes;
  LocalRanks lr;
  lr.first_rank = o.node_rank * per;
  if (o.nnodes == 1 && o.dist_init_addr.empty()) {
    lr.groups = make_thread_group(o.world_size, o.timeout);
    lr.backend = "threads";
    return lr;
  }
  WS_CHECK_ARG(!o.dist_init_addr.empty(), "--nnodes {} needs --dist-init-addr HOST:PORT", o.nnodes);
  const auto colon = o.dist_init_addr.rfind(':');
  WS_CHECK_ARG(colon != std::string::npos, "--dist-init-addr must be HOST:PORT (got '{}')",
               o.dist_init_addr);
  GlooOptions g;
  g.store_host = o.dist_init_addr.substr(0, colon);
  g.store_port = std::stoi(o.dist_init_addr.substr(colon + 1));
  g.prefix = o.prefix;
  g.timeout = o.timeout;
  if (o.node_rank == 0) lr.server = std::make_unique<TcpStoreServer>(g.store_host, g.store_port);
  lr.backend = "gloo";
  lr.groups.resize(per);
  std::vector<std::thread> ts;
  std::vector<std::exception_ptr> errs(per);
  for (int i = 0; i < per; ++i)
    ts.emplace_back([&, i] {
      try {
        lr.groups[i] = make_gloo_group(lr.first_rank + i, o.world_size, g);
      } catch (...) {
        errs[i] = std::current_exception();
      }
    });
  for (auto& t : ts) t.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
  WS_LOG_INFO("gloo: ranks {}..{} of {} joined at {}", lr.first_rank, lr.first_rank + per - 1,
              o.world_size, o.dist_init_addr);
  return lr;
}

}  // namespace wideserve::dist
