#include "engine/multi_rank_engine.h"

#include <algorithm>
#include <chrono>

#include "common/check.h"
#include "common/logging.h"
#include "kvcache/mla_kv_storage.h"
#include "kvcache/page_pool.h"

namespace wideserve::engine {
namespace {

enum Command { kStep = 1, kMetrics = 2, kStop = 3 };

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

int DpController::pick(const NewRequest& r) {
  int rank = 0;
  switch (method_) {
    case LoadBalanceMethod::kRoundRobin:
      rank = static_cast<int>(next_++ % ranks_);
      break;
    case LoadBalanceMethod::kTotalRequests:
      rank = static_cast<int>(std::min_element(requests_.begin(), requests_.end()) -
                              requests_.begin());
      break;
    case LoadBalanceMethod::kTotalTokens:
      rank = static_cast<int>(std::min_element(tokens_.begin(), tokens_.end()) - tokens_.begin());
      break;
    case LoadBalanceMethod::kFollowBootstrapRoom:
      rank = r.disagg.present() ? static_cast<int>(r.disagg.bootstrap_room % ranks_)
                                : static_cast<int>(next_++ % ranks_);
      break;
  }
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
  int index = 0;
  std::unique_ptr<dist::ProcessGroup> pg;
  std::unique_ptr<model::EpMoe> ep;
  EpModelRunner* runner = nullptr;  // owned by core
  std::unique_ptr<EngineCore> core;
  std::vector<NewRequest> adds;
  std::vector<uint64_t> aborts;
  std::vector<RequestOutput> outs;
  model::EpMetrics metrics;
  std::thread thread;
};

MultiRankEngine::MultiRankEngine(const EngineConfig& cfg,
                                 std::shared_ptr<model::DeepseekModel> model,
                                 std::vector<std::unique_ptr<dist::ProcessGroup>> groups,
                                 const MultiRankOptions& opts)
    : model_(std::move(model)),
      opts_(opts),
      dp_(static_cast<int>(groups.size()), opts.load_balance) {
  WS_CHECK_ARG(!groups.empty(), "multi-rank engine without ranks");
  for (size_t i = 0; i < groups.size(); ++i) {
    WS_CHECK(groups[i]->rank() == static_cast<int>(i) &&
                 groups[i]->size() == static_cast<int>(groups.size()),
             "multi-rank engine: group {} is rank {} of {}", i, groups[i]->rank(),
             groups[i]->size());
    auto r = std::make_unique<Rank>();
    r->index = static_cast<int>(i);
    r->pg = std::move(groups[i]);
    r->ep = std::make_unique<model::EpMoe>(model_->config(), model_->weights(), *r->pg, opts.ep);
    const auto& c = model_->config();
    int64_t tokens = cfg.max_total_tokens;
    if (tokens <= 0)
      tokens = std::clamp<int64_t>((1ll << 30) / (c.num_hidden_layers * c.kv_cache_dim() * 4),
                                   cfg.page_size, 65536);
    auto runner = std::make_unique<EpModelRunner>(model_, r->ep.get(), tokens, cfg.page_size);
    r->runner = runner.get();
    r->core = std::make_unique<EngineCore>(cfg, std::move(runner));
    ranks_.push_back(std::move(r));
  }
  // Every rank holds its own experts now; the full copy is not needed any more.
  model_->release_routed_experts();
  vocab_size_ = ranks_[0]->core->vocab_size();
  context_length_ = ranks_[0]->core->context_length();
  page_size_ = ranks_[0]->core->page_size();
  WS_LOG_INFO("multi-rank engine: {} ranks, {} physical experts per rank", ranks_.size(),
              ranks_[0]->ep->placement().local_count());
  for (auto& r : ranks_) r->thread = std::thread([this, rp = r.get()] { rank_loop(*rp); });
  thread_ = std::thread([this] { loop(); });
}

MultiRankEngine::~MultiRankEngine() {
  shutdown();
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

void MultiRankEngine::add_request(NewRequest r, OutputCallback on_output) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox_.emplace_back(std::move(r), std::move(on_output));
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

void MultiRankEngine::run_on_ranks(int command) {
  std::unique_lock<std::mutex> lk(step_mu_);
  step_command_ = command;
  step_done_ = 0;
  ++step_gen_;
  step_cv_.notify_all();
  step_cv_.wait(lk, [&] { return step_done_ == static_cast<int>(ranks_.size()); });
}

void MultiRankEngine::rank_loop(Rank& r) {
  uint64_t seen = 0;
  for (;;) {
    int command;
    {
      std::unique_lock<std::mutex> lk(step_mu_);
      step_cv_.wait(lk, [&] { return step_gen_ != seen; });
      seen = step_gen_;
      command = step_command_;
    }
    if (command == kStep) {
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
      } catch (const std::exception& e) {
        WS_LOG_ERROR("rank {}: step failed: {}", r.index, e.what());
      }
    } else if (command == kMetrics) {
      try {
        r.metrics = r.ep->metrics();
        r.ep->reset_metrics();
      } catch (const std::exception& e) {
        WS_LOG_ERROR("rank {}: metrics failed: {}", r.index, e.what());
      }
    }
    {
      std::lock_guard<std::mutex> lk(step_mu_);
      ++step_done_;
    }
    step_cv_.notify_all();
    if (command == kStop) return;
  }
}

void MultiRankEngine::loop() {
  auto any_work = [this] {
    for (auto& r : ranks_)
      if (r->core->has_work()) return true;
    return false;
  };
  int64_t steps = 0;
  auto step_and_deliver = [&] {
    step_started_ns_.store(now_ns(), std::memory_order_relaxed);
    run_on_ranks(kStep);
    step_started_ns_.store(0, std::memory_order_relaxed);
    ++steps;
    EngineStats st;
    for (auto& r : ranks_) {
      for (const auto& o : r->outs) {
        auto it = callbacks_.find(o.id);
        if (it == callbacks_.end()) continue;
        it->second(o);
        if (o.finish != FinishReason::kNone && !r->core->has_request(o.id)) {
          callbacks_.erase(it);
          dp_.finished(r->index, o.id);
          std::lock_guard<std::mutex> lk(mu_);
          owner_.erase(o.id);
        }
      }
      r->outs.clear();
      const EngineStats s = r->core->stats();
      st.running += s.running;
      st.waiting += s.waiting;
      st.pages_total += s.pages_total;
      st.pages_free += s.pages_free;
      st.pages_cached += s.pages_cached;
      st.prefix_hit_tokens += s.prefix_hit_tokens;
      st.generated_tokens += s.generated_tokens;
      st.retractions += s.retractions;
    }
    st.steps = steps;
    if (opts_.metrics_log_interval > 0 && steps % opts_.metrics_log_interval == 0) {
      run_on_ranks(kMetrics);
      const auto& m = ranks_[0]->metrics;
      double worst = 1.0;
      for (double x : m.layer_imbalance) worst = std::max(worst, x);
      WS_LOG_INFO(
          "EP: {} forwards, {:.1f} tokens dispatched per forward, {:.2f} MB moved, "
          "worst layer imbalance {:.2f} (max/mean over ranks), {} rebalances",
          m.forwards, m.forwards ? double(m.tokens_dispatched) / m.forwards : 0.0,
          m.bytes_sent / 1e6, worst, m.rebalances);
      std::lock_guard<std::mutex> lk(mu_);
      metrics_ = m;
    }
    std::lock_guard<std::mutex> lk(mu_);
    stats_ = st;
  };
  for (;;) {
    std::vector<std::pair<NewRequest, OutputCallback>> adds;
    std::vector<uint64_t> aborts;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !inbox_.empty() || !aborts_.empty() || any_work(); });
      if (stop_) break;
      adds.swap(inbox_);
      aborts.swap(aborts_);
      for (auto& [r, cb] : adds) {
        const int rank = dp_.pick(r);
        owner_[r.id] = rank;
        callbacks_[r.id] = std::move(cb);
        ranks_[rank]->adds.push_back(std::move(r));
      }
      for (uint64_t id : aborts) {
        auto it = owner_.find(id);
        if (it != owner_.end()) ranks_[it->second]->aborts.push_back(id);
      }
    }
    step_and_deliver();
  }
  // Shutting down: abort what is left so that every caller hears an end, then stop the ranks.
  std::vector<std::pair<NewRequest, OutputCallback>> never_started;
  {
    std::lock_guard<std::mutex> lk(mu_);
    never_started.swap(inbox_);
    for (const auto& [id, rank] : owner_) ranks_[rank]->aborts.push_back(id);
  }
  for (auto& [r, cb] : never_started) {
    RequestOutput o;
    o.id = r.id;
    o.finish = FinishReason::kAbort;
    o.prompt_tokens = static_cast<int64_t>(r.prompt.size());
    cb(o);
  }
  step_and_deliver();
  callbacks_.clear();
  run_on_ranks(kStop);
  for (auto& r : ranks_) r->thread.join();
}

}  // namespace wideserve::engine
