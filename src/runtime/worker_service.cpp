#include "runtime/worker_service.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::runtime {

std::string make_instance_id() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  return fmt::format("{}:{}:{:08x}", host, getpid(), rd());
}

WorkerService::WorkerService(std::unique_ptr<engine::AsyncEngine> engine, WorkerInfo info,
                             WorkerServiceOptions opts)
    : engine_(std::move(engine)), info_(std::move(info)), opts_(std::move(opts)) {
  RequestServer::Handlers h;
  h.on_generate = [this](const PeerRequest& key, GenerateRequest req) {
    on_generate(key, std::move(req));
  };
  h.on_abort = [this](const PeerRequest& key) { on_abort(key); };
  RequestServerOptions so;
  so.advertise_host = opts_.advertise_host;
  server_ = std::make_unique<RequestServer>(opts_.bind_endpoint, std::move(h), so);
  info_.endpoint = server_->endpoint();
  if (info_.instance_id.empty()) info_.instance_id = make_instance_id();
}

WorkerService::~WorkerService() {
  if (registration_) registration_->stop();
  if (server_) server_->stop();
  if (engine_) engine_->shutdown();
}

size_t WorkerService::inflight() const {
  std::lock_guard<std::mutex> lk(mu_);
  return calls_.size();
}

void WorkerService::on_generate(const PeerRequest& key, GenerateRequest req) {
  const uint64_t id = next_id_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (by_key_.count(key)) {
      engine::RequestOutput o;
      o.id = key.request_id;
      o.finish = engine::FinishReason::kError;
      o.error = fmt::format("request id {} is already in flight on this worker", key.request_id);
      server_->send(key, GenerateOutput{o});
      return;
    }
    calls_[id] = Call{key, std::max<int32_t>(1, req.params.n)};
    by_key_[key] = id;
  }
  engine::NewRequest r;
  r.id = id;
  r.prompt = std::move(req.token_ids);
  r.params = std::move(req.params);
  r.sample_index = req.sample_index;
  r.resumed_tokens = req.resumed_tokens;
  r.dp_rank = req.dp_rank;
  r.disagg = std::move(req.disagg);
  engine_->add_request(std::move(r), [this, key, id](const engine::RequestOutput& out) {
    engine::RequestOutput o = out;
    o.id = key.request_id;
    const bool last_of_sample = out.finish != engine::FinishReason::kNone;
    server_->send(key, GenerateOutput{std::move(o)});
    if (!last_of_sample) return;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    // A request rejected as a whole (bad params) reports one error for all its samples.
    if (out.finish == engine::FinishReason::kError && out.new_tokens.empty() && out.index == 0 &&
        out.completion_tokens == 0)
      it->second.open = std::min<int32_t>(it->second.open, 1);
    if (--it->second.open <= 0) {
      by_key_.erase(it->second.key);
      calls_.erase(it);
    }
  });
}

void WorkerService::on_abort(const PeerRequest& key) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return;
    id = it->second;
  }
  engine_->abort(id);
}

WorkerLoad WorkerService::load() const {
  const auto s = engine_->stats();
  WorkerLoad l;
  l.running = s.running;
  l.waiting = s.waiting;
  l.kv_pages_total = s.pages_total;
  l.kv_pages_used = s.pages_total - s.pages_free;
  l.generated_tokens = s.generated_tokens;
  l.kv_pages_active = l.kv_pages_used - s.pages_evictable;
  l.ep = s.ep;
  return l;
}

int WorkerService::run() {
  RegistrationOptions ro;
  ro.interval = std::chrono::milliseconds(opts_.heartbeat_interval_ms);
  registration_ = make_worker_registration(
      opts_.discovery, info_, [this] { return load(); }, ro);
  WS_LOG_INFO("worker {} serving model '{}' at {} (discovery {})", info_.instance_id,
              info_.model_name, info_.endpoint, opts_.discovery);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int exit_code = 0;
  for (;;) {
    timespec ts{0, 200 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      WS_LOG_INFO("signal {}: draining {} request(s), up to {:.0f} s", sig, inflight(),
                  opts_.drain_timeout_s);
      break;
    }
    if (const std::string why = engine_->fatal_error(); !why.empty()) {
      // The engine failed for good (a node of a multi-node engine was lost): its requests got
      // error outputs; leave discovery and exit now (its rank threads may still sit in
      // collectives with the lost peer, so there is no orderly engine shutdown).
      WS_LOG_CRITICAL("engine failed: {}; exiting", why);
      registration_->stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // error outputs go out
      ::spdlog::default_logger()->flush();
      std::_Exit(1);
    }
    const double stuck = engine_->seconds_stuck();
    if (stuck > opts_.watchdog_timeout_s) {
      // A hung step (a deadlock, a wedged device) must not look like a live worker.
      WS_LOG_CRITICAL(
          "watchdog: an engine step has run for {:.1f} s (--watchdog-timeout {}); "
          "exiting",
          stuck, opts_.watchdog_timeout_s);
      std::_Exit(70);
    }
  }
  registration_->set_draining(true);
  const auto drain_start = std::chrono::steady_clock::now();
  const auto deadline =
      drain_start + std::chrono::milliseconds(static_cast<int64_t>(opts_.drain_timeout_s * 1e3));
  // Requests the frontend sent before it heard "draining" may still be on their way: even when
  // idle, stay a moment (a few heartbeats, at most 1 s) so they are served rather than lost.
  const auto grace =
      std::min(deadline, drain_start + std::chrono::milliseconds(std::clamp<int64_t>(
                                           3 * opts_.heartbeat_interval_ms, 300, 1000)));
  while ((inflight() > 0 || std::chrono::steady_clock::now() < grace) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (inflight() > 0) {
    WS_LOG_WARN("drain deadline: aborting {} request(s)", inflight());
    exit_code = 0;
  }
  registration_->stop();
  engine_->shutdown();  // unfinished requests get their abort outputs
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let those reach the frontend
  server_->stop();
  WS_LOG_INFO("worker {} stopped", info_.instance_id);
  return exit_code;
}

}  // namespace wideserve::runtime
