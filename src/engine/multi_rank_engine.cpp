#include "engine/multi_rank_engine.h"

#include <algorithm>
#include <chrono>

#include "common/check.h"
#include "common/logging.h"
#include "dist/process_group.h"
#include "kvcache/mla_kv_storage.h"
#include "kvcache/page_pool.h"

namespace wideserve::engine {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One rank's model: the shared (immutable) model with this rank's KV pool and EpMoe. Remembers
// whether the step ran a forward, so that the rank can join with an empty one otherwise.
class EpModelRunner : public ModelRunner {
 public:
  EpModelRunner(std::shared_ptr<model::DeepseekModel> m, model::EpMoe* ep, int64_t max_total_tokens,
                int64_t page_size)
      : model_(std::move(m)),
        ep_(ep),
        kv_(model_->config().num_hidden_layers, kvcache::pages_for(max_total_tokens, page_size),
            page_size, model_->config().kv_cache_dim()) {}
  int64_t vocab_size() const override { return model_->config().vocab_size; }
  int64_t num_pages() const override { return kv_.num_pages(); }
  int64_t page_size() const override { return kv_.page_size(); }
  int64_t max_context() const override { return model_->config().max_position_embeddings; }
  std::vector<int32_t> eos_token_ids() const override { return model_->config().eos_token_ids; }
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) override {
    forwarded_ = true;
    model::ForwardOptions o;
    o.ep = ep_;
    model_->forward(seqs, kv_, logits, o);
  }
  KvBufferInfo kv_buffer() override {
    return {kv_.data(),      kv_.bytes(),   kv_.num_layers(),
            kv_.slots(),     kv_.row_dim(), static_cast<int64_t>(sizeof(float)),
            kv_.page_size(), "f32"};
  }
  // Joins the step's MoE exchanges with no tokens if the core did not run a forward.
  void finish_step() {
    if (!forwarded_) {
      std::vector<float> logits;
      forward({}, &logits);
    }
    forwarded_ = false;
  }

 private:
  std::shared_ptr<model::DeepseekModel> model_;
  model::EpMoe* ep_;
  kvcache::MlaKvStorage kv_;
  bool forwarded_ = false;
};

}  // namespace

LoadBalanceMethod parse_load_balance_method(const std::string& s) {
  if (s == "round_robin" || s == "auto") return LoadBalanceMethod::kRoundRobin;
  if (s == "total_requests") return LoadBalanceMethod::kTotalRequests;
  if (s == "total_tokens") return LoadBalanceMethod::kTotalTokens;
  if (s == "follow_bootstrap_room") return LoadBalanceMethod::kFollowBootstrapRoom;
  WS_THROW(kUnimplemented,
           "--load-balance-method {} is not supported (round_robin, total_requests, "
           "total_tokens, follow_bootstrap_room)",
           s);
}

DpController::DpController(int ranks, LoadBalanceMethod m)
    : ranks_(ranks), method_(m), requests_(ranks, 0), tokens_(ranks, 0) {}

int DpController::by_method(const NewRequest& r) {
  switch (method_) {
    case LoadBalanceMethod::kRoundRobin:
      break;
    case LoadBalanceMethod::kTotalRequests:
      return static_cast<int>(std::min_element(requests_.begin(), requests_.end()) -
                              requests_.begin());
    case LoadBalanceMethod::kTotalTokens:
      return static_cast<int>(std::min_element(tokens_.begin(), tokens_.end()) - tokens_.begin());
    case LoadBalanceMethod::kFollowBootstrapRoom:
      if (r.disagg.present()) return static_cast<int>(r.disagg.bootstrap_room % ranks_);
      break;
  }
  return static_cast<int>(next_++ % ranks_);
}

int DpController::pick(const NewRequest& r) {
  // A rank the KV router chose (it knows where the prompt's prefix is cached) wins, as SGLang's
  // data_parallel_rank does; an out-of-range one (a stale route) falls back to the method.
  const int rank = r.dp_rank >= 0 && r.dp_rank < ranks_ ? r.dp_rank : by_method(r);
  const int64_t tokens =
      static_cast<int64_t>(r.prompt.size()) + int64_t{r.params.max_new_tokens} * r.params.n;
  ++requests_[rank];
  tokens_[rank] += tokens;
  owner_[r.id] = {rank, tokens};
  return rank;
}

void DpController::finished(int rank, uint64_t id) {
  auto it = owner_.find(id);
  if (it == owner_.end()) return;
  --requests_[it->second.first];
  tokens_[it->second.first] -= it->second.second;
  owner_.erase(it);
}

struct MultiRankEngine::Rank {
  int index = 0;   // in this process
  int global = 0;  // in the group
  std::unique_ptr<dist::ProcessGroup> pg;
  std::unique_ptr<model::EpMoe> ep;
  EpModelRunner* runner = nullptr;  // owned by core
  std::unique_ptr<EngineCore> core;
  std::vector<NewRequest> adds;
  std::vector<uint64_t> aborts;
  std::vector<RequestOutput> outs;
  std::shared_ptr<kvcache::KvEventRecorder> kv_recorder;  // other nodes: changes for the report
  model::EpMetrics metrics;
  std::string error;  // a failed round: the group is unusable
  std::thread thread;
};

namespace {
int group_size(const std::vector<std::unique_ptr<dist::ProcessGroup>>& g) {
  WS_CHECK_ARG(!g.empty() && g[0], "multi-rank engine without ranks");
  return g[0]->size();
}
}  // namespace

MultiRankEngine::MultiRankEngine(const EngineConfig& cfg,
                                 std::shared_ptr<model::DeepseekModel> model,
                                 std::vector<std::unique_ptr<dist::ProcessGroup>> groups,
                                 const MultiRankOptions& opts)
    : model_(std::move(model)), opts_(opts), dp_(group_size(groups), opts.load_balance) {
  world_ = groups[0]->size();
  first_ = groups[0]->rank();
  distributed_ = static_cast<int>(groups.size()) < world_;
  WS_CHECK_ARG(!distributed_ || opts_.wire.complete(),
               "multi-rank engine over several processes needs a RankWire");
  for (size_t i = 0; i < groups.size(); ++i) {
    WS_CHECK(groups[i]->rank() == first_ + static_cast<int>(i) && groups[i]->size() == world_,
             "multi-rank engine: local rank {} is rank {} of {} (expected {} of {})", i,
             groups[i]->rank(), groups[i]->size(), first_ + static_cast<int>(i), world_);
    auto r = std::make_unique<Rank>();
    r->index = static_cast<int>(i);
    r->global = first_ + static_cast<int>(i);
    r->pg = std::move(groups[i]);
    r->ep = std::make_unique<model::EpMoe>(model_->config(), model_->weights(), *r->pg, opts.ep);
    const auto& c = model_->config();
    int64_t tokens = cfg.max_total_tokens;
    if (tokens <= 0)
      tokens = std::clamp<int64_t>((1ll << 30) / (c.num_hidden_layers * c.kv_cache_dim() * 4),
                                   cfg.page_size, 65536);
    auto runner = std::make_unique<EpModelRunner>(model_, r->ep.get(), tokens, cfg.page_size);
    r->runner = runner.get();
    EngineConfig rank_cfg = cfg;
    rank_cfg.kv_event_sink = nullptr;
    if (first_ == 0 && opts.kv_event_sink) {
      rank_cfg.kv_event_sink = opts.kv_event_sink(r->global);
    } else if (first_ != 0 && opts.forward_kv_events) {
      r->kv_recorder = std::make_shared<kvcache::KvEventRecorder>();
      rank_cfg.kv_event_sink = r->kv_recorder;
    }
    r->core = std::make_unique<EngineCore>(rank_cfg, std::move(runner));
    ranks_.push_back(std::move(r));
  }
  // Every rank holds its own experts now; the full copy is not needed any more.
  model_->release_routed_experts();
  for (int64_t l = 0; l < model_->config().num_hidden_layers; ++l)
    if (model_->config().is_moe_layer(l)) moe_layers_.push_back(static_cast<int32_t>(l));
  remote_.resize(world_);
  reports_.resize(world_);
  remote_kv_sinks_.resize(world_);
  for (int g = 0; leader() && opts_.kv_event_sink && g < world_; ++g)
    if (!is_local(g)) remote_kv_sinks_[g] = opts_.kv_event_sink(g);
  ep_.ranks = world_;
  ep_.layers = moe_layers_;
  stats_.ep = ep_;
  vocab_size_ = ranks_[0]->core->vocab_size();
  context_length_ = ranks_[0]->core->context_length();
  page_size_ = ranks_[0]->core->page_size();
  WS_LOG_INFO("multi-rank engine: ranks {}..{} of {} here ({}), {} physical experts per rank",
              first_, first_ + num_local() - 1, world_, leader() ? "leader" : "follower",
              ranks_[0]->ep->placement().local_count());
  for (auto& r : ranks_) r->thread = std::thread([this, rp = r.get()] { rank_loop(*rp); });
  if (leader()) thread_ = std::thread([this] { loop(); });
}

MultiRankEngine::~MultiRankEngine() {
  shutdown();
  for (auto& r : ranks_)
    if (r->thread.joinable()) r->thread.join();
}

void MultiRankEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string MultiRankEngine::wait_follower() {
  WS_CHECK(!leader(), "wait_follower on node 0");
  std::string why;
  for (auto& r : ranks_) {
    if (r->thread.joinable()) r->thread.join();
    if (why.empty() && !r->error.empty()) why = fmt::format("rank {}: {}", r->global, r->error);
  }
  return why;
}

void MultiRankEngine::add_request(NewRequest r, OutputCallback on_output) {
  std::string why;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!leader()) why = "this node follows node 0 and takes no requests";
    if (!fatal_.empty()) why = fatal_;
    if (why.empty()) inbox_.emplace_back(std::move(r), std::move(on_output));
  }
  if (!why.empty()) {
    RequestOutput o;
    o.id = r.id;
    o.finish = FinishReason::kError;
    o.error = why;
    o.prompt_tokens = static_cast<int64_t>(r.prompt.size());
    on_output(o);
    return;
  }
  cv_.notify_all();
}

void MultiRankEngine::abort(uint64_t id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    aborts_.push_back(id);
  }
  cv_.notify_all();
}

EngineStats MultiRankEngine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

model::EpMetrics MultiRankEngine::ep_metrics() const {
  std::lock_guard<std::mutex> lk(mu_);
  return metrics_;
}

int MultiRankEngine::rank_of(uint64_t id) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = owner_.find(id);
  return it == owner_.end() ? -1 : it->second;
}

double MultiRankEngine::seconds_stuck() const {
  const int64_t t = step_started_ns_.load(std::memory_order_relaxed);
  return t == 0 ? 0.0 : (now_ns() - t) * 1e-9;
}

std::string MultiRankEngine::fatal_error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return fatal_;
}

bool MultiRankEngine::run_on_ranks(RankCommand command) {
  if (distributed_) {
    RankPlan p;
    p.command = command;
    if (command == RankCommand::kStep)
      for (int g = 0; g < world_; ++g) {
        Remote& x = remote_[g];
        if (is_local(g) || (x.adds.empty() && x.aborts.empty())) continue;
        p.work.push_back({g, std::move(x.adds), std::move(x.aborts)});
        x.adds.clear();
        x.aborts.clear();
      }
    plan_ = encode_plan(p, opts_.wire);
  }
  bool stuck = false;
  step_started_ns_.store(now_ns(), std::memory_order_relaxed);
  {
    std::unique_lock<std::mutex> lk(step_mu_);
    step_command_ = command;
    step_done_ = 0;
    step_failed_ = 0;
    ++step_gen_;
    step_cv_.notify_all();
    auto all_done = [&] { return step_done_ == num_local(); };
    step_cv_.wait(lk, [&] { return all_done() || step_failed_ > 0; });
    // After one rank failed, the others may wait in a collective for it (until the group's
    // timeout): give them a moment, then report the failure without them.
    if (!all_done()) stuck = !step_cv_.wait_for(lk, std::chrono::seconds(2), all_done);
  }
  step_started_ns_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!fatal_.empty()) return false;
  }
  std::string why;
  {
    std::lock_guard<std::mutex> lk(step_mu_);  // stuck ranks may still write their error
    for (auto& r : ranks_)
      if (why.empty() && !r->error.empty())
        why = fmt::format("expert-parallel engine failed: rank {}: {}{}", r->global, r->error,
                          stuck ? " (other local ranks did not finish)" : "");
  }
  if (why.empty()) return true;
  fail_everything(why);
  return false;
}

void MultiRankEngine::rank_step(Rank& r, bool report) {
  for (auto& a : r.adds) {
    const uint64_t id = a.id;
    try {
      r.core->add_request(std::move(a));
    } catch (const Error& e) {
      RequestOutput o;
      o.id = id;
      o.finish = FinishReason::kError;
      o.error = user_message(e);
      r.outs.push_back(std::move(o));
    }
  }
  r.adds.clear();
  for (uint64_t id : r.aborts) r.core->abort(id);
  r.aborts.clear();
  try {
    auto outs = r.core->step();
    r.outs.insert(r.outs.end(), std::make_move_iterator(outs.begin()),
                  std::make_move_iterator(outs.end()));
    r.runner->finish_step();
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw;  // the group is gone
    WS_LOG_ERROR("rank {}: step failed: {}", r.global, e.what());
  } catch (const std::exception& e) {
    WS_LOG_ERROR("rank {}: step failed: {}", r.global, e.what());
  }
  if (!report) return;
  // Other nodes send their outputs to rank 0; node 0's ranks send nothing.
  std::vector<std::vector<char>> blobs(world_);
  if (!leader()) {
    RankReport rep;
    rep.has_work = r.core->has_work();
    rep.stats = r.core->stats();
    for (auto& o : r.outs) {
      const bool done = o.finish != FinishReason::kNone && !r.core->has_request(o.id);
      rep.outputs.push_back({std::move(o), done});
    }
    r.outs.clear();
    if (r.kv_recorder) rep.kv_changes = r.kv_recorder->take();
    const std::string s = encode_report(rep, opts_.wire);
    blobs[0].assign(s.begin(), s.end());
  }
  auto got = dist::exchange_blobs(*r.pg, blobs);
  if (r.global == 0) reports_ = std::move(got);
}

void MultiRankEngine::rank_loop(Rank& r) {
  uint64_t seen = 0;
  for (;;) {
    RankCommand command = RankCommand::kIdle;
    bool control = distributed_;
    if (leader()) {
      std::unique_lock<std::mutex> lk(step_mu_);
      step_cv_.wait(lk, [&] { return step_gen_ != seen; });
      seen = step_gen_;
      command = step_command_;
      control = distributed_ && !skip_control_;
    }
    bool failed = false;
    try {
      if (control) {
        // Rank 0 broadcasts the round's plan; other nodes take their command and work from it.
        const std::string_view mine = r.global == 0 ? std::string_view(plan_) : std::string_view();
        const auto blob =
            dist::broadcast_v(*r.pg, std::span<const char>(mine.data(), mine.size()), 0);
        if (!leader()) {
          RankPlan p = decode_plan(std::string_view(blob.data(), blob.size()), opts_.wire);
          command = p.command;
          for (auto& k : p.work)
            if (k.rank == r.global) {
              r.adds = std::move(k.adds);
              r.aborts = std::move(k.aborts);
            }
        }
      }
      if (command == RankCommand::kStep) {
        rank_step(r, control);
      } else if (command == RankCommand::kMetrics) {
        r.metrics = r.ep->metrics();
        r.ep->reset_metrics();
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lk(step_mu_);
      r.error = user_message(e);
      failed = true;
      WS_LOG_ERROR("rank {}: {}", r.global, e.what());
    }
    if (leader()) {
      {
        std::lock_guard<std::mutex> lk(step_mu_);
        if (seen == step_gen_) {  // a rank that was given up on does not count for a later round
          ++step_done_;
          if (failed) ++step_failed_;
        }
      }
      step_cv_.notify_all();
    }
    if (command == RankCommand::kStop || (failed && !leader())) return;
  }
}

void MultiRankEngine::fail_everything(const std::string& why) {
  WS_LOG_CRITICAL("{}", why);
  std::vector<std::pair<NewRequest, OutputCallback>> inbox;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (fatal_.empty()) fatal_ = why;
    inbox.swap(inbox_);
    owner_.clear();
    aborts_.clear();
  }
  {
    std::lock_guard<std::mutex> lk(step_mu_);
    skip_control_ = true;
  }
  // Every caller hears the failure now, rather than waiting for outputs that will never come.
  auto fail = [&](uint64_t id, const OutputCallback& cb) {
    RequestOutput o;
    o.id = id;
    o.finish = FinishReason::kError;
    o.error = why;
    cb(o);
  };
  for (auto& [id, cb] : callbacks_) fail(id, cb);
  callbacks_.clear();
  for (auto& [r, cb] : inbox) fail(r.id, cb);
  for (auto& r : ranks_) r->outs.clear();
}

void MultiRankEngine::step_and_deliver() {
  if (!run_on_ranks(RankCommand::kStep)) return;
  ++steps_;
  std::vector<RankReport> reports(distributed_ ? world_ : 0);
  for (int g = 0; distributed_ && g < world_; ++g) {
    if (is_local(g)) continue;
    try {
      reports[g] =
          decode_report(std::string_view(reports_[g].data(), reports_[g].size()), opts_.wire);
    } catch (const std::exception& e) {
      fail_everything(
          fmt::format("expert-parallel engine failed: report of rank {}: {}", g, e.what()));
      return;
    }
    remote_[g].has_work = reports[g].has_work;
    remote_[g].stats = reports[g].stats;
    if (remote_kv_sinks_[g]) kvcache::replay(reports[g].kv_changes, *remote_kv_sinks_[g]);
  }
  EngineStats st;
  bool busy = false;
  for (auto& r : ranks_) {
    add_stats(st, r->core->stats());
    busy = busy || r->core->has_work();
  }
  for (int g = 0; distributed_ && g < world_; ++g)
    if (!is_local(g)) {
      add_stats(st, remote_[g].stats);
      busy = busy || remote_[g].has_work;
    }
  st.steps = steps_;
  // EP figures before the outputs: a caller that saw its last token sees that step's figures.
  if (opts_.metrics_interval > 0 &&
      (steps_ - metrics_steps_ >= opts_.metrics_interval || (!busy && steps_ > metrics_steps_)))
    collect_metrics();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!fatal_.empty()) return;
    st.ep = ep_;
    stats_ = st;
  }
  auto deliver = [&](int global, const RequestOutput& o, bool done) {
    auto it = callbacks_.find(o.id);
    if (it == callbacks_.end()) return;
    it->second(o);
    if (!done) return;
    callbacks_.erase(it);
    dp_.finished(global, o.id);
    std::lock_guard<std::mutex> lk(mu_);
    owner_.erase(o.id);
  };
  for (auto& r : ranks_) {
    for (const auto& o : r->outs)
      deliver(r->global, o, o.finish != FinishReason::kNone && !r->core->has_request(o.id));
    r->outs.clear();
  }
  for (int g = 0; distributed_ && g < world_; ++g)
    for (const auto& x : reports[g].outputs) deliver(g, x.output, x.done);
}

void MultiRankEngine::collect_metrics() {
  metrics_steps_ = steps_;
  if (!run_on_ranks(RankCommand::kMetrics)) return;
  const model::EpMetrics& m = ranks_[0]->metrics;  // identical on every rank
  ep_.forwards += m.forwards;
  ep_.tokens_dispatched += m.tokens_dispatched;
  ep_.bytes_moved += m.bytes_sent;
  ep_.rebalances = m.rebalances;
  bool any_tokens = false;
  for (int64_t t : m.layer_tokens) any_tokens = any_tokens || t > 0;
  // A window without MoE tokens says nothing about balance: keep the last one that had some.
  if (any_tokens) ep_.layer_imbalance = m.layer_imbalance;
  if (opts_.metrics_log_interval > 0 && steps_ >= next_log_step_) {
    next_log_step_ = steps_ + opts_.metrics_log_interval;
    double worst = 1.0;
    for (double x : ep_.layer_imbalance) worst = std::max(worst, x);
    WS_LOG_INFO(
        "EP: {} forwards, {:.1f} tokens dispatched per forward, {:.2f} MB moved, "
        "worst layer imbalance {:.2f} (max/mean over ranks), {} rebalances",
        ep_.forwards, ep_.forwards ? double(ep_.tokens_dispatched) / ep_.forwards : 0.0,
        ep_.bytes_moved / 1e6, worst, ep_.rebalances);
  }
  if (any_tokens) {
    std::lock_guard<std::mutex> lk(mu_);
    metrics_ = m;
  }
}

void MultiRankEngine::loop() {
  auto any_work = [this] {
    for (auto& r : ranks_)
      if (r->core->has_work()) return true;
    for (const auto& x : remote_)
      if (x.has_work) return true;
    return false;
  };
  auto failed = [this] {
    std::lock_guard<std::mutex> lk(mu_);
    return !fatal_.empty();
  };
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto ready = [&] {
        return stop_ || !inbox_.empty() || !aborts_.empty() || (fatal_.empty() && any_work());
      };
      if (distributed_ && fatal_.empty()) {
        if (!cv_.wait_for(lk, opts_.idle_round, ready)) {
          // Idle: an empty round keeps the other nodes' collectives alive and shows a lost node.
          lk.unlock();
          run_on_ranks(RankCommand::kIdle);
          continue;
        }
      } else {
        cv_.wait(lk, ready);
      }
      if (stop_) break;
      if (!fatal_.empty()) {  // add_request answers by itself now; drop what raced in
        aborts_.clear();
        continue;
      }
      std::vector<std::pair<NewRequest, OutputCallback>> adds;
      std::vector<uint64_t> aborts;
      adds.swap(inbox_);
      aborts.swap(aborts_);
      for (auto& [r, cb] : adds) {
        const int rank = dp_.pick(r);
        owner_[r.id] = rank;
        callbacks_[r.id] = std::move(cb);
        if (is_local(rank))
          ranks_[rank - first_]->adds.push_back(std::move(r));
        else
          remote_[rank].adds.push_back(std::move(r));
      }
      for (uint64_t id : aborts) {
        auto it = owner_.find(id);
        if (it == owner_.end()) continue;
        if (is_local(it->second))
          ranks_[it->second - first_]->aborts.push_back(id);
        else
          remote_[it->second].aborts.push_back(id);
      }
    }
    step_and_deliver();
  }
  // Shutting down: abort what is left so that every caller hears an end, then stop the ranks.
  std::vector<std::pair<NewRequest, OutputCallback>> never_started;
  {
    std::lock_guard<std::mutex> lk(mu_);
    never_started.swap(inbox_);
    for (const auto& [id, rank] : owner_)
      (is_local(rank) ? ranks_[rank - first_]->aborts : remote_[rank].aborts).push_back(id);
  }
  for (auto& [r, cb] : never_started) {
    RequestOutput o;
    o.id = r.id;
    o.finish = FinishReason::kAbort;
    o.prompt_tokens = static_cast<int64_t>(r.prompt.size());
    cb(o);
  }
  if (!failed()) step_and_deliver();
  callbacks_.clear();
  run_on_ranks(RankCommand::kStop);
  for (auto& r : ranks_) r->thread.join();
}

}  // namespace wideserve::engine
