#include "router/worker_router.h"

#include "common/check.h"

namespace wideserve::router {

RouterMode parse_router_mode(std::string_view s) {
  if (s == "round-robin" || s == "round_robin") return RouterMode::kRoundRobin;
  if (s == "random") return RouterMode::kRandom;
  if (s == "kv")
    WS_THROW(kUnimplemented, "not supported yet: --router-mode kv (cluster runtime issue)");
  WS_THROW(kInvalidArgument, "--router-mode must be round-robin or random (got '{}')", s);
}

WorkerRouter::WorkerRouter(RouterMode mode, uint64_t seed) : mode_(mode), rng_(seed) {}

size_t WorkerRouter::pick(std::span<const Candidate> candidates) {
  WS_CHECK_CODE(kUnavailable, !candidates.empty(), "no worker to route to");
  if (mode_ == RouterMode::kRoundRobin)
    return static_cast<size_t>(next_.fetch_add(1, std::memory_order_relaxed) % candidates.size());
  std::lock_guard<std::mutex> lk(mu_);
  return std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_);
}

}  // namespace wideserve::router
