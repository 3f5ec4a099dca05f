// The frontend process: HTTP server, worker discovery, request routing and the OpenAI endpoints.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "frontend/metrics.h"
#include "frontend/model_manager.h"
#include "router/kv_event_subscriber.h"
#include "router/worker_router.h"
#include "runtime/discovery.h"
#include "runtime/http_server.h"
#include "runtime/request_client.h"

namespace wideserve::frontend {

using runtime::HttpExchange;
using runtime::HttpServer;
using runtime::HttpServerOptions;
namespace net = boost::asio;
namespace http = boost::beast::http;

// Settings of a frontend (built from config::FrontendConfig by the CLI).
struct FrontendOptions {
  std::string http_host = "0.0.0.0";
  uint16_t http_port = 8000;
  std::string discovery = "embedded://127.0.0.1:29400";
  router::RouterMode router_mode = router::RouterMode::kRoundRobin;
  double router_prefill_load_scale = 4.0;   // kv cost: weight of uncached prompt blocks
  double router_temperature = 0.0;          // kv: 0 = cheapest, > 0 = softmax sampling
  std::optional<double> busy_threshold;     // all workers above this KV usage: 503
  std::optional<int64_t> busy_queue_limit;  // all workers with more queued requests: 503
  int64_t worker_ttl_ms = 3000;
  int64_t max_concurrent_requests = 4096;
  size_t max_body_bytes = 32u << 20;
  int http_threads = 2;
  double shutdown_timeout_s = 30.0;  // SIGTERM: in-flight requests get this long to finish
  int64_t migration_limit = 0;       // times a choice may move when its worker is lost
};

class Frontend {
 public:
  explicit Frontend(FrontendOptions opts);
  ~Frontend();
  // Serves until SIGINT/SIGTERM (or stop()), then drains; returns the exit code.
  int run();
  // Starts the drain from any thread (what SIGTERM does).
  void stop();
  uint16_t port() const { return server_ ? server_->port() : 0; }

 private:
  net::awaitable<void> handle(HttpExchange& ex);
  net::awaitable<void> handle_completion(HttpExchange& ex, int endpoint);
  net::awaitable<void> respond_error(HttpExchange& ex, int status, const std::string& type,
                                     const std::string& message, const std::string& param = {});
  std::string health_body(bool healthy) const;
  void on_worker_added(const runtime::WorkerInfo& info);
  void on_worker_removed(const runtime::WorkerInfo& info, const std::string& reason);
  void refresh_worker_metrics();
  void begin_drain();

  FrontendOptions opts_;
  net::io_context ioc_;
  MetricsRegistry metrics_;
  ModelManager models_;
  std::shared_ptr<router::KvIndex> kv_index_;  // KV routing: every worker's cached blocks
  router::WorkerRouter router_;                 // decode (or aggregated) workers
  router::WorkerRouter prefill_router_;  // prefill workers (PD)
  std::unique_ptr<runtime::RequestClient> client_;
  std::unique_ptr<router::KvEventSubscriber> kv_events_;  // KV routing: follows the workers
  std::unique_ptr<runtime::WorkerWatcher> watcher_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<uint64_t> next_request_id_{1};
  std::atomic<int64_t> inflight_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace wideserve::frontend
