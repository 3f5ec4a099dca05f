// One engine over N expert-parallel ranks (SGLang DP attention): every rank has its own
// EngineCore (scheduler, requests, KV pool) and its own EpMoe; the DP controller spreads requests
// over ranks by --load-balance-method; ranks step in lockstep (a rank with nothing to do runs an
// empty forward, so every MoE layer's exchange has all ranks). Behind AsyncEngine, so the worker
// service and the frontend are unchanged. The ranks may span several processes ("nodes"): node 0
// (global rank 0 here) leads, the others follow; every round starts with a control broadcast from
// rank 0 (rank_channel.h) and every step ends with the other nodes' outputs sent to rank 0.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dist/process_group.h"
#include "engine/engine.h"
#include "engine/rank_channel.h"
#include "model/deepseek_model.h"
#include "model/ep_moe.h"

namespace wideserve::engine {

// --load-balance-method
enum class LoadBalanceMethod { kRoundRobin, kTotalRequests, kTotalTokens, kFollowBootstrapRoom };
// "round_robin" | "total_requests" | "total_tokens" | "follow_bootstrap_room" ("auto" = round
// robin); others throw kUnimplemented.
LoadBalanceMethod parse_load_balance_method(const std::string& s);

// Picks a rank for each new request (data + policy; no threads): the router's dp_rank when the
// request carries one, else by --load-balance-method.
class DpController {
 public:
  DpController(int ranks, LoadBalanceMethod m);
  int pick(const NewRequest& r);
  void finished(int rank, uint64_t id);  // the request's last output was delivered
  int64_t in_flight(int rank) const { return requests_[rank]; }

 private:
  int by_method(const NewRequest& r);

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
  // EP figures (stats().ep) are collected every N steps and when the engine goes idle.
  int64_t metrics_interval = 16;
  // Several processes: the serializers (required), and how often an idle node 0 runs an empty
  // control round, so that the other nodes' collectives do not time out and a lost node shows.
  RankWire wire;
  std::chrono::milliseconds idle_round{1000};
  // Node 0: where each rank's prefix cache reports its blocks (KV-aware routing per DP rank), by
  // global rank, those of other nodes included (their changes come with their step reports);
  // unset or null: no events.
  std::function<std::shared_ptr<kvcache::KvEventSink>(int)> kv_event_sink;
  // Nodes R > 0: record every rank's cache changes and send them to node 0 with each report.
  bool forward_kv_events = false;
};

class MultiRankEngine : public AsyncEngine {
 public:
  // `groups`: this process's ranks, consecutive global ranks of one group (all of it, or one
  // node's share). The model's full routed experts are released once every rank has its own.
  // With global rank 0 here this engine leads (AsyncEngine API); otherwise it follows (call
  // wait_follower).
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
  std::string fatal_error() const override;

  // Node R > 0: blocks until node 0 stops the engine (returns "") or a round fails (returns why).
  std::string wait_follower();
  bool leader() const { return first_ == 0; }

  int num_ranks() const { return world_; }
  // The latest EP metrics (updated every metrics_log_interval steps and at each rebalance check).
  model::EpMetrics ep_metrics() const;
  // Which rank runs request `id` (-1 if unknown): for tests.
  int rank_of(uint64_t id) const;

 private:
  struct Rank;
  struct Remote {  // a rank of another node, as node 0 sees it
    std::vector<NewRequest> adds;
    std::vector<uint64_t> aborts;
    bool has_work = false;
    EngineStats stats;
  };
  void loop();
  void rank_loop(Rank& r);
  void rank_step(Rank& r, bool report);
  // Runs one round on every local rank (and, through the control broadcast, on every node);
  // returns false when the engine failed (fatal_error()).
  bool run_on_ranks(RankCommand command);
  void step_and_deliver();
  void collect_metrics();
  void fail_everything(const std::string& why);
  bool is_local(int global) const { return global >= first_ && global < first_ + num_local(); }
  int num_local() const { return static_cast<int>(ranks_.size()); }

  std::shared_ptr<model::DeepseekModel> model_;
  int world_ = 0, first_ = 0;
  bool distributed_ = false;  // ranks in other processes
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::vector<Remote> remote_;  // [global rank]; loop thread only
  // Node 0: the KV event sinks of other nodes' ranks [global rank] (null: none).
  std::vector<std::shared_ptr<kvcache::KvEventSink>> remote_kv_sinks_;
  std::string plan_;                        // the round's encoded RankPlan (rank 0 sends it)
  std::vector<std::vector<char>> reports_;  // [global rank] reports received by rank 0
  std::vector<int32_t> moe_layers_;
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
  EpStats ep_;  // loop thread; copied into stats_
  int64_t steps_ = 0, metrics_steps_ = 0, next_log_step_ = 0;
  std::string fatal_;  // guarded by mu_
  int64_t vocab_size_ = 0, context_length_ = 0, page_size_ = 0;
  std::atomic<int64_t> step_started_ns_{0};
  bool stop_ = false;
  // Lockstep: the loop thread posts a command, every rank thread runs it, the loop waits.
  std::mutex step_mu_;
  std::condition_variable step_cv_;
  uint64_t step_gen_ = 0;
  RankCommand step_command_ = RankCommand::kIdle;
  bool skip_control_ = false;  // the group failed: rounds stay local (only kStop is sent then)
  int step_done_ = 0;
  int step_failed_ = 0;
  std::thread thread_;
};

}  // namespace wideserve::engine
