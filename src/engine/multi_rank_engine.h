// One engine over N expert-parallel ranks in this process (SGLang DP attention): every rank has
// its own EngineCore (scheduler, requests, KV pool) and its own EpMoe; the DP controller spreads
// requests over ranks by --load-balance-method; ranks step in lockstep (a rank with nothing to do
// runs an empty forward, so every MoE layer's exchange has all ranks). Behind AsyncEngine, so the
// worker service and the frontend are unchanged.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dist/process_group.h"
#include "engine/engine.h"
#include "model/deepseek_model.h"
#include "model/ep_moe.h"

namespace wideserve::engine {

// --load-balance-method
enum class LoadBalanceMethod { kRoundRobin, kTotalRequests, kTotalTokens, kFollowBootstrapRoom };
// "round_robin" | "total_requests" | "total_tokens" | "follow_bootstrap_room" ("auto" = round
// robin); others throw kUnimplemented.
LoadBalanceMethod parse_load_balance_method(const std::string& s);

// Picks a rank for each new request (data + policy; no threads).
class DpController {
 public:
  DpController(int ranks, LoadBalanceMethod m);
  int pick(const NewRequest& r);
  void finished(int rank, uint64_t id);  // the request's last output was delivered
  int64_t in_flight(int rank) const { return requests_[rank]; }

 private:
  int ranks_;
  LoadBalanceMethod method_;
  uint64_t next_ = 0;
  std::vector<int64_t> requests_, tokens_;
  std::unordered_map<uint64_t, std::pair<int, int64_t>> owner_;  // id -> (rank, tokens)
};

// Options of the multi-rank engine.
struct MultiRankOptions {
  LoadBalanceMethod load_balance = LoadBalanceMethod::kRoundRobin;
  model::EpOptions ep;
  int64_t metrics_log_interval = 0;  // log EP metrics every N steps (0 = never)
};

class MultiRankEngine : public AsyncEngine {
 public:
  // `groups`: one connected ProcessGroup per rank (all ranks of the group live in this process).
  // The model's full routed experts are released once every rank has taken its own.
  MultiRankEngine(const EngineConfig& cfg, std::shared_ptr<model::DeepseekModel> model,
                  std::vector<std::unique_ptr<dist::ProcessGroup>> groups,
                  const MultiRankOptions& opts);
  ~MultiRankEngine() override;

  void add_request(NewRequest r, OutputCallback on_output) override;
  void abort(uint64_t id) override;
  EngineStats stats() const override;
  void shutdown() override;
  int64_t vocab_size() const override { return vocab_size_; }
  int64_t context_length() const override { return context_length_; }
  int64_t page_size() const override { return page_size_; }
  double seconds_stuck() const override;

  int num_ranks() const { return static_cast<int>(ranks_.size()); }
  // The latest EP metrics (updated every metrics_log_interval steps and at each rebalance check).
  model::EpMetrics ep_metrics() const;
  // Which rank runs request `id` (-1 if unknown): for tests.
  int rank_of(uint64_t id) const;

 private:
  struct Rank;
  void loop();
  void rank_loop(Rank& r);
  void run_on_ranks(int command);

  std::shared_ptr<model::DeepseekModel> model_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  MultiRankOptions opts_;
  DpController dp_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<NewRequest, OutputCallback>> inbox_;
  std::vector<uint64_t> aborts_;
  std::unordered_map<uint64_t, OutputCallback> callbacks_;  // loop thread only
  std::unordered_map<uint64_t, int> owner_;                 // guarded by mu_
  EngineStats stats_;
  model::EpMetrics metrics_;
  int64_t vocab_size_ = 0, context_length_ = 0, page_size_ = 0;
  std::atomic<int64_t> step_started_ns_{0};
  bool stop_ = false;
  // Lockstep: the loop thread posts a command, every rank thread runs it, the loop waits.
  std::mutex step_mu_;
  std::condition_variable step_cv_;
  uint64_t step_gen_ = 0;
  int step_command_ = 0;
  int step_done_ = 0;
  std::thread thread_;
};

}  // namespace wideserve::engine
