#include "frontend/frontend.h"

#include <nlohmann/json.hpp>

#include <thread>

#include "api/openai_response.h"
#include "common/check.h"
#include "common/logging.h"
#include "frontend/ep_metrics.h"

namespace wideserve::frontend {

namespace {

router::RouterOptions router_options(const FrontendOptions& o) {
  router::RouterOptions r;
  r.mode = o.router_mode;
  r.prefill_load_scale = o.router_prefill_load_scale;
  r.temperature = o.router_temperature;
  r.busy_threshold = o.busy_threshold;
  r.busy_queue_limit = o.busy_queue_limit;
  return r;
}

}  // namespace

Frontend::Frontend(FrontendOptions opts)
    : opts_(std::move(opts)),
      kv_index_(std::make_shared<router::KvIndex>()),
      router_(router_options(opts_), kv_index_),
      prefill_router_(router_options(opts_), kv_index_) {
  client_ = std::make_unique<runtime::RequestClient>();
  if (opts_.router_mode == router::RouterMode::kKv)
    kv_events_ = std::make_unique<router::KvEventSubscriber>(kv_index_);
  runtime::WatcherCallbacks cb;
  cb.admit = [this](const runtime::WorkerInfo& info) { return models_.add_worker(info); };
  cb.on_added = [this](const runtime::WorkerInfo& info) { on_worker_added(info); };
  cb.on_removed = [this](const runtime::WorkerInfo& info, const std::string& reason) {
    on_worker_removed(info, reason);
  };
  cb.on_updated = [this](const runtime::WorkerEntry& e) {
    models_.update_worker(e.info, e.load, e.draining);
  };
  runtime::WatcherOptions wo;
  wo.ttl = std::chrono::milliseconds(opts_.worker_ttl_ms);
  watcher_ = runtime::make_worker_watcher(opts_.discovery, wo, std::move(cb));
  HttpServerOptions so;
  so.host = opts_.http_host;
  so.port = opts_.http_port;
  so.max_body_bytes = opts_.max_body_bytes;
  server_ = std::make_unique<HttpServer>(ioc_, so, [this](HttpExchange& ex) { return handle(ex); });
}

Frontend::~Frontend() {
  if (watcher_) watcher_->stop();
  if (kv_events_) kv_events_->stop();
  client_.reset();
}

void Frontend::on_worker_added(const runtime::WorkerInfo& info) {
  WS_LOG_INFO("worker {} joined: model '{}' at {}", info.instance_id, info.model_name,
              info.endpoint);
  if (kv_events_) {
    if (info.kv_events_endpoint.empty())
      WS_LOG_WARN("worker {} publishes no KV events: the kv router sees no cache there",
                  info.instance_id);
    kv_events_->add_worker(info.instance_id, info.kv_events_endpoint, info.kv_state_endpoint,
                           info.dp_size);
  }
}

void Frontend::on_worker_removed(const runtime::WorkerInfo& info, const std::string& reason) {
  WS_LOG_WARN("worker {} left: {}", info.instance_id, reason);
  models_.remove_worker(info.instance_id);
  if (kv_events_) kv_events_->remove_worker(info.instance_id);
  metrics_.remove_gauge_series("wideserve_frontend_kv_router_blocks", {info.instance_id});
  metrics_.remove_gauge_series("wideserve_frontend_kv_router_rank_blocks", {info.instance_id});
  metrics_.remove_gauge_series("wideserve_frontend_worker_rank_routed_requests",
                               {info.instance_id});
  metrics_.remove_gauge_series("wideserve_frontend_worker_routed_requests", {info.instance_id});
  metrics_.remove_gauge_series("wideserve_frontend_worker_kv_usage", {info.instance_id});
  metrics_.remove_gauge_series("wideserve_frontend_worker_running_requests", {info.instance_id});
  metrics_.remove_gauge_series("wideserve_frontend_worker_waiting_requests", {info.instance_id});
  remove_ep_metrics(metrics_, info.instance_id);
  // Its in-flight requests fail now with the reason, rather than hanging.
  if (client_->inflight(info.endpoint) > 0)
    WS_LOG_WARN("failing {} in-flight request(s) of worker {}", client_->inflight(info.endpoint),
                info.instance_id);
  client_->fail_endpoint(info.endpoint,
                         fmt::format("worker {} failed: {}", info.instance_id, reason));
}

void Frontend::refresh_worker_metrics() {
  for (const auto& w : models_.workers()) {
    const Labels l = {w.info.instance_id, w.info.model_name};
    const std::vector<std::string> names = {"worker", "model"};
    const std::vector<std::string> rank_names = {"worker", "model", "dp_rank"};
    const double total = static_cast<double>(w.load.kv_pages_total);
    metrics_
        .gauge("wideserve_frontend_worker_kv_usage", "KV cache pages in use / total per worker",
               names, l)
        .set(total > 0 ? w.load.kv_pages_used / total : 0.0);
    metrics_
        .gauge("wideserve_frontend_worker_running_requests", "Running sequences per worker", names,
               l)
        .set(static_cast<double>(w.load.running));
    metrics_
        .gauge("wideserve_frontend_worker_waiting_requests", "Queued sequences per worker", names,
               l)
        .set(static_cast<double>(w.load.waiting));
    export_ep_metrics(metrics_, w.info.instance_id, w.info.model_name, w.load.ep);
    metrics_
        .gauge("wideserve_frontend_worker_routed_requests",
               "Requests routed to each worker since it joined", names, l)
        .set(static_cast<double>(router_.routed_total(w.info.instance_id) +
                                 prefill_router_.routed_total(w.info.instance_id)));
    if (kv_events_) {
      int64_t blocks = 0;
      for (int32_t r = 0; r < std::max(1, w.info.dp_size); ++r) {
        const router::WorkerRank rank{w.info.instance_id, r};
        blocks += kv_index_->num_blocks(rank);
        if (w.info.dp_size <= 1) continue;
        // Multi-rank workers: where the kv router found and sent work, per DP rank.
        const std::vector<std::string> rl{w.info.instance_id, w.info.model_name, std::to_string(r)};
        metrics_
            .gauge("wideserve_frontend_kv_router_rank_blocks",
                   "KV blocks the kv router's index holds per DP rank of a worker", rank_names, rl)
            .set(static_cast<double>(kv_index_->num_blocks(rank)));
        metrics_
            .gauge("wideserve_frontend_worker_rank_routed_requests",
                   "Requests the kv router sent to each DP rank of a worker since it joined",
                   rank_names, rl)
            .set(static_cast<double>(router_.routed_total(rank)));
      }
      metrics_
          .gauge("wideserve_frontend_kv_router_blocks",
                 "KV blocks the kv router's index holds per worker", names, l)
          .set(static_cast<double>(blocks));
    }
  }
}

std::string Frontend::health_body(bool healthy) const {
  nlohmann::json j;
  j["status"] = healthy ? "healthy" : (draining_ ? "draining" : "unhealthy");
  j["instances"] = nlohmann::json::array();
  for (const auto& w : models_.workers()) {
    j["instances"].push_back(
        {{"instance_id", w.info.instance_id},
         {"model", w.info.model_name},
         {"endpoint", w.info.endpoint},
         {"draining", w.draining},
         {"role", w.info.role == runtime::WorkerRole::kPrefill  ? "prefill"
                  : w.info.role == runtime::WorkerRole::kDecode ? "decode"
                                                                : "aggregated"},
         {"running", w.load.running},
         {"waiting", w.load.waiting}});
  }
  return j.dump();
}

net::awaitable<void> Frontend::respond_error(HttpExchange& ex, int status, const std::string& type,
                                             const std::string& message, const std::string& param) {
  api::ApiError e;
  e.status = status;
  e.type = type;
  e.message = message;
  e.param = param;
  co_await ex.respond(static_cast<http::status>(status), "application/json", api::error_body(e));
}

net::awaitable<void> Frontend::handle(HttpExchange& ex) {
  const auto& req = ex.request();
  std::string target(req.target());
  if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
  const bool get = req.method() == http::verb::get;
  const bool post = req.method() == http::verb::post;
  if (target == "/v1/chat/completions" || target == "/v1/completions") {
    if (!post) {
      co_await respond_error(ex, 405, "invalid_request_error", "use POST for " + target);
      co_return;
    }
    // GCC 12 mishandles conditional-operator temporaries inside co_await: compute them first.
    const int ep = target == "/v1/chat/completions"
                       ? static_cast<int>(api::Endpoint::kChatCompletions)
                       : static_cast<int>(api::Endpoint::kCompletions);
    co_await handle_completion(ex, ep);
    co_return;
  }
  if (!get) {
    const int status = target == "/v1/models" || target == "/health" ? 405 : 404;
    const std::string msg = "no route for " + std::string(req.method_string()) + " " + target;
    co_await respond_error(ex, status, "invalid_request_error", msg);
    co_return;
  }
  if (target == "/v1/models") {
    std::vector<api::ModelCard> cards;
    for (const auto& m : models_.models())
      cards.push_back({m->name, m->created, "wideserve", m->context_length});
    co_await ex.respond(http::status::ok, "application/json", api::models_list(cards));
  } else if (target == "/health") {
    const bool healthy = !draining_ && models_.has_ready_worker();
    const auto status = healthy ? http::status::ok : http::status::service_unavailable;
    std::string body = health_body(healthy);
    co_await ex.respond(status, "application/json", std::move(body));
  } else if (target == "/live") {
    co_await ex.respond(http::status::ok, "application/json", R"({"status":"live"})");
  } else if (target == "/metrics") {
    refresh_worker_metrics();
    metrics_.gauge("wideserve_frontend_inflight_requests", "Requests being served", {}, {})
        .set(static_cast<double>(inflight_.load()));
    co_await ex.respond(http::status::ok, "text/plain; version=0.0.4", metrics_.render());
  } else {
    co_await respond_error(ex, 404, "invalid_request_error", "no route for GET " + target);
  }
}

void Frontend::stop() {
  net::post(ioc_, [this] { begin_drain(); });
}

void Frontend::begin_drain() {
  if (draining_.exchange(true)) return;
  WS_LOG_INFO("draining: {} request(s) in flight, up to {:.0f} s", inflight_.load(),
              opts_.shutdown_timeout_s);
  // Still accepting: load balancers' /health probes get 503 and new completions 503 (not a
  // refused connection) until the last in-flight request has finished.
  auto timer = std::make_shared<net::steady_timer>(ioc_);
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(opts_.shutdown_timeout_s * 1e3));
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, timer, deadline, poll] {
    if (inflight_.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
      if (inflight_.load() > 0) WS_LOG_WARN("drain deadline: {} request(s) cut", inflight_.load());
      ioc_.stop();
      return;
    }
    timer->expires_after(std::chrono::milliseconds(50));
    timer->async_wait([poll](boost::system::error_code) { (*poll)(); });
  };
  (*poll)();
}

int Frontend::run() {
  server_->start();
  net::signal_set signals(ioc_, SIGINT, SIGTERM);
  signals.async_wait([this](boost::system::error_code ec, int sig) {
    if (!ec) {
      WS_LOG_INFO("signal {}: shutting down", sig);
      begin_drain();
    }
  });
  WS_LOG_INFO("frontend listening on http://{}:{} (discovery {}, router {})", opts_.http_host,
              server_->port(), watcher_->url(), router::router_mode_name(opts_.router_mode));
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, opts_.http_threads); ++i)
    threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
  watcher_->stop();
  WS_LOG_INFO("frontend stopped");
  return 0;
}

}  // namespace wideserve::frontend
