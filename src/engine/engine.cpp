#include "engine/engine.h"

#include <chrono>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::engine {

Engine::Engine(const EngineConfig& cfg, std::unique_ptr<ModelRunner> runner)
    : Engine(cfg, std::move(runner), nullptr) {}

Engine::Engine(const EngineConfig& cfg, std::unique_ptr<ModelRunner> runner,
               std::function<std::unique_ptr<LoopHook>(const KvBufferInfo&)> make_hook)
    : core_(cfg, std::move(runner)),
      vocab_size_(core_.vocab_size()),
      context_length_(core_.context_length()),
      page_size_(core_.page_size()) {
  if (make_hook) hook_ = make_hook(core_.kv_buffer());
  thread_ = std::thread([this] { loop(); });
}

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

double Engine::seconds_stuck() const {
  const int64_t t = step_started_ns_.load(std::memory_order_relaxed);
  return t == 0 ? 0.0 : (now_ns() - t) * 1e-9;
}

Engine::~Engine() {
  shutdown();
}

void Engine::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Engine::add_request(NewRequest r, OutputCallback on_output) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox_.emplace_back(std::move(r), std::move(on_output));
  }
  cv_.notify_all();
}

void Engine::abort(uint64_t id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    aborts_.push_back(id);
  }
  cv_.notify_all();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void Engine::loop() {
  auto deliver = [this](const std::vector<RequestOutput>& outs) {
    for (const auto& o : outs) {
      auto it = callbacks_.find(o.id);
      if (it == callbacks_.end()) continue;
      it->second(o);
    }
  };
  auto forget_finished = [this](const std::vector<RequestOutput>& outs) {
    for (const auto& o : outs)
      if (o.finish != FinishReason::kNone && !core_.has_request(o.id) &&
          !(hook_ && hook_->owns(o.id)))
        callbacks_.erase(o.id);
  };
  for (;;) {
    std::vector<std::pair<NewRequest, OutputCallback>> adds;
    std::vector<uint64_t> aborts;
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto ready = [&] { return stop_ || !inbox_.empty() || !aborts_.empty() || core_.has_work(); };
      if (hook_ && hook_->busy())
        cv_.wait_for(lk, std::chrono::milliseconds(1), ready);  // transfers need polling
      else
        cv_.wait(lk, ready);
      if (stop_) break;
      adds.swap(inbox_);
      aborts.swap(aborts_);
    }
    std::vector<RequestOutput> outs;
    for (auto& [r, cb] : adds) {
      const uint64_t id = r.id;
      try {
        callbacks_[id] = std::move(cb);
        if (!hook_ || !hook_->intercept(r, core_, outs)) core_.add_request(std::move(r));
      } catch (const Error& e) {
        // The boundary: bad input becomes this request's error; serving goes on.
        RequestOutput o;
        o.id = id;
        o.finish = FinishReason::kError;
        o.error = user_message(e);
        outs.push_back(std::move(o));
      }
    }
    for (uint64_t id : aborts)
      if (!hook_ || !hook_->abort(id, core_, outs)) core_.abort(id);
    if (hook_) {
      try {
        hook_->poll(core_, outs);
      } catch (const std::exception& e) {
        WS_LOG_ERROR("disaggregation poll failed: {}", e.what());
      }
    }
    step_started_ns_.store(now_ns(), std::memory_order_relaxed);
    try {
      auto step_outs = core_.step();
      outs.insert(outs.end(), std::make_move_iterator(step_outs.begin()),
                  std::make_move_iterator(step_outs.end()));
    } catch (const std::exception& e) {
      WS_LOG_ERROR("engine step failed: {}", e.what());
    }
    step_started_ns_.store(0, std::memory_order_relaxed);
    if (hook_) hook_->on_outputs(core_, outs);
    deliver(outs);
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_ = core_.stats();
      if (hook_) stats_.waiting += hook_->queued();
    }
    forget_finished(outs);
  }
  // Shutting down: abort what is left so that every caller hears an end.
  std::vector<std::pair<NewRequest, OutputCallback>> never_started;
  {
    std::lock_guard<std::mutex> lk(mu_);
    never_started.swap(inbox_);
  }
  for (auto& [r, cb] : never_started) {
    RequestOutput o;
    o.id = r.id;
    o.finish = FinishReason::kAbort;
    o.prompt_tokens = static_cast<int64_t>(r.prompt.size());
    cb(o);
  }
  for (auto& [id, cb] : callbacks_) core_.abort(id);
  deliver(core_.step());
  callbacks_.clear();
}

}  // namespace wideserve::engine
