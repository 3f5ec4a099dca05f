#include "router/worker_router.h"

#include <algorithm>

#include "common/check.h"
#include "kvcache/block_hash.h"
#include "router/kv_cost.h"

namespace wideserve::router {
namespace {

int64_t blocks_of(size_t tokens, int64_t block_size) {
  if (block_size <= 0) return 0;
  return (static_cast<int64_t>(tokens) + block_size - 1) / block_size;
}

}  // namespace

RouterMode parse_router_mode(std::string_view s) {
  if (s == "round-robin" || s == "round_robin") return RouterMode::kRoundRobin;
  if (s == "random") return RouterMode::kRandom;
  if (s == "kv") return RouterMode::kKv;
  WS_THROW(kInvalidArgument, "--router-mode must be round-robin, random or kv (got '{}')", s);
}

const char* router_mode_name(RouterMode m) {
  switch (m) {
    case RouterMode::kRoundRobin:
      return "round-robin";
    case RouterMode::kRandom:
      return "random";
    case RouterMode::kKv:
      return "kv";
  }
  return "unknown";
}

template <typename K, typename H>
void LoadTracker::Counts<K, H>::add(const K& k, int64_t blocks) {
  auto& l = loads[k];
  l.blocks += blocks;
  l.requests += 1;
  totals[k] += 1;
}

template <typename K, typename H>
void LoadTracker::Counts<K, H>::remove(const K& k, int64_t blocks) {
  auto it = loads.find(k);
  if (it == loads.end()) return;
  it->second.blocks -= blocks;
  it->second.requests -= 1;
  if (it->second.requests <= 0) loads.erase(it);
}

void LoadTracker::add(const WorkerRank& w, int64_t blocks) {
  std::lock_guard<std::mutex> lk(mu_);
  workers_.add(w.instance_id, blocks);
  if (w.dp_rank >= 0) ranks_.add(w, blocks);
}

void LoadTracker::remove(const WorkerRank& w, int64_t blocks) {
  std::lock_guard<std::mutex> lk(mu_);
  workers_.remove(w.instance_id, blocks);
  if (w.dp_rank >= 0) ranks_.remove(w, blocks);
}

namespace {
template <typename M, typename K>
auto value_or_default(const M& m, const K& k) -> typename M::mapped_type {
  auto it = m.find(k);
  return it == m.end() ? typename M::mapped_type{} : it->second;
}
}  // namespace

int64_t LoadTracker::total(const std::string& worker) const {
  std::lock_guard<std::mutex> lk(mu_);
  return value_or_default(workers_.totals, worker);
}

int64_t LoadTracker::total(const WorkerRank& w) const {
  std::lock_guard<std::mutex> lk(mu_);
  return value_or_default(ranks_.totals, w);
}

LoadTracker::Load LoadTracker::get(const std::string& worker) const {
  std::lock_guard<std::mutex> lk(mu_);
  return value_or_default(workers_.loads, worker);
}

LoadTracker::Load LoadTracker::get(const WorkerRank& w) const {
  std::lock_guard<std::mutex> lk(mu_);
  return value_or_default(ranks_.loads, w);
}

Assignment::Assignment(std::shared_ptr<LoadTracker> tracker, size_t index, WorkerRank target,
                       int64_t blocks, int64_t overlap_blocks)
    : tracker_(std::move(tracker)),
      index_(index),
      target_(std::move(target)),
      blocks_(blocks),
      overlap_blocks_(overlap_blocks) {
  tracker_->add(target_, blocks_);
}

Assignment& Assignment::operator=(Assignment&& o) noexcept {
  if (this == &o) return *this;
  release();
  tracker_ = std::move(o.tracker_);
  o.tracker_.reset();
  index_ = o.index_;
  target_ = std::move(o.target_);
  blocks_ = o.blocks_;
  overlap_blocks_ = o.overlap_blocks_;
  return *this;
}

void Assignment::release() {
  if (!tracker_) return;
  tracker_->remove(target_, blocks_);
  tracker_.reset();
}

WorkerRouter::WorkerRouter(RouterMode mode, uint64_t seed)
    : WorkerRouter(RouterOptions{.mode = mode}, nullptr, seed) {}

WorkerRouter::WorkerRouter(RouterOptions opts, std::shared_ptr<const KvIndex> index, uint64_t seed)
    : opts_(opts), index_(std::move(index)), rng_(seed) {
  WS_CHECK_ARG(opts_.mode != RouterMode::kKv || index_, "KV routing needs a KV index");
  WS_CHECK_ARG(opts_.prefill_load_scale >= 0, "--router-prefill-load-scale must be >= 0 (got {})",
               opts_.prefill_load_scale);
  WS_CHECK_ARG(opts_.temperature >= 0, "--router-temperature must be >= 0 (got {})",
               opts_.temperature);
}

size_t WorkerRouter::pick(std::span<const Candidate> candidates) {
  WS_CHECK_CODE(kUnavailable, !candidates.empty(), "no worker to route to");
  if (opts_.mode == RouterMode::kRoundRobin)
    return static_cast<size_t>(next_.fetch_add(1, std::memory_order_relaxed) % candidates.size());
  std::lock_guard<std::mutex> lk(mu_);
  return std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_);
}

WorkerRank WorkerRouter::pick_kv(std::span<const Candidate> candidates,
                                 std::span<const int32_t> tokens, size_t* index_out,
                                 int64_t* overlap_out) {
  // One option per candidate, or per DP rank of a multi-rank candidate (each rank has its own
  // cache and its own share of the worker's load).
  struct Option {
    size_t index;
    int32_t dp_rank;
  };
  std::vector<Option> options;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].dp_size <= 1)
      options.push_back({i, -1});
    else
      for (int32_t r = 0; r < candidates[i].dp_size; ++r) options.push_back({i, r});
  }
  std::vector<double> costs(options.size());
  std::vector<int64_t> loads(options.size());
  std::vector<int64_t> overlaps(options.size());
  // Workers of one model normally share a page size: hash once per distinct size.
  std::unordered_map<int64_t, std::vector<uint64_t>> hashes_by_size;
  for (size_t k = 0; k < options.size(); ++k) {
    const Candidate& c = candidates[options[k].index];
    const WorkerRank rank{c.instance_id, std::max(0, options[k].dp_rank)};
    KvCostInput in;
    in.request_blocks = blocks_of(tokens.size(), c.page_size);
    if (c.page_size > 0) {
      auto [it, fresh] = hashes_by_size.try_emplace(c.page_size);
      if (fresh) it->second = kvcache::block_hashes(tokens, c.page_size);
      in.overlap_blocks = index_->overlap(rank, it->second);
    }
    // The load term counts what this router sent there and is still in flight, updated at
    // once (worker reports lag): each request adds its whole prompt, so cache overlap can pull
    // at most overlap x scale blocks of extra load onto one worker (docs/kv_routing.md).
    // A rank's share of the worker's reported load is taken as even.
    const LoadTracker::Load t =
        options[k].dp_rank < 0 ? tracker_->get(c.instance_id) : tracker_->get(rank);
    const int64_t reported = (c.load.running + c.load.waiting) / std::max(1, c.dp_size);
    in.active_blocks = t.blocks;
    in.load = std::max(t.requests, reported);
    costs[k] = kv_cost(in, opts_.prefill_load_scale);
    loads[k] = in.load;
    overlaps[k] = in.overlap_blocks;
  }
  size_t chosen;
  {
    std::lock_guard<std::mutex> lk(mu_);
    chosen = select_by_cost(costs, loads, opts_.temperature, rng_);
  }
  *index_out = options[chosen].index;
  *overlap_out = overlaps[chosen];
  return WorkerRank{candidates[options[chosen].index].instance_id, options[chosen].dp_rank};
}

Assignment WorkerRouter::route(std::span<const Candidate> candidates,
                               std::span<const int32_t> tokens) {
  WS_CHECK_CODE(kUnavailable, !candidates.empty(), "no worker to route to");
  int64_t overlap = 0;
  size_t i = 0;
  WorkerRank target;
  if (opts_.mode == RouterMode::kKv) {
    target = pick_kv(candidates, tokens, &i, &overlap);
  } else {
    i = pick(candidates);
    target = WorkerRank{candidates[i].instance_id, -1};
  }
  const Candidate& c = candidates[i];
  const int64_t blocks = blocks_of(tokens.size(), c.page_size > 0 ? c.page_size : 1);
  return Assignment(tracker_, i, std::move(target), blocks, overlap);
}

bool WorkerRouter::is_busy(const Candidate& c) const {
  const LoadTracker::Load t = tracker_->get(c.instance_id);
  if (opts_.busy_threshold && c.load.kv_pages_total > 0) {
    const int64_t active = std::max(c.load.kv_pages_active, t.blocks);
    if (static_cast<double>(active) / static_cast<double>(c.load.kv_pages_total) >
        *opts_.busy_threshold)
      return true;
  }
  if (opts_.busy_queue_limit && c.load.waiting > *opts_.busy_queue_limit) return true;
  return false;
}

bool WorkerRouter::all_busy(std::span<const Candidate> candidates) const {
  if (!opts_.busy_threshold && !opts_.busy_queue_limit) return false;
  if (candidates.empty()) return false;
  return std::all_of(candidates.begin(), candidates.end(),
                     [&](const Candidate& c) { return is_busy(c); });
}

}  // namespace wideserve::router
