// `wideserve frontend`: the seed's `python3 -m dynamo.frontend`. OpenAI-compatible HTTP in front
// of the workers that register with it.
#include "cli/command.h"
#include "common/logging.h"
#include "config/frontend_config.h"
#include "frontend/frontend.h"

namespace wideserve::cli {
namespace {

int run_frontend(config::FrontendConfig& cfg) {
  config::finalize_frontend_config(cfg);
  set_log_level(cfg.log_level);
  for (const auto& w : cfg.warnings) WS_LOG_WARN("{}", w);
  frontend::FrontendOptions o;
  o.http_host = cfg.http_host;
  o.http_port = static_cast<uint16_t>(cfg.http_port);
  o.discovery = cfg.discovery;
  o.router_mode = router::parse_router_mode(cfg.router_mode);
  o.router_prefill_load_scale = cfg.router_prefill_load_scale;
  o.router_temperature = cfg.router_temperature;
  o.busy_threshold = cfg.busy_threshold;
  o.busy_queue_limit = cfg.busy_queue_limit;
  o.worker_ttl_ms = cfg.worker_ttl_ms;
  o.max_concurrent_requests = cfg.max_concurrent_requests;
  o.max_body_bytes = static_cast<size_t>(cfg.max_body_bytes);
  o.http_threads = static_cast<int>(cfg.http_threads);
  o.migration_limit = cfg.migration_limit;
  frontend::Frontend fe(o);
  return fe.run();
}

WS_REGISTER_COMMAND("frontend", "OpenAI-compatible HTTP frontend in front of the workers",
                    [](CLI::App& app) {
                      auto cfg = std::make_shared<config::FrontendConfig>();
                      config::add_frontend_flags(app, *cfg);
                      return [cfg] { return run_frontend(*cfg); };
                    });

}  // namespace
}  // namespace wideserve::cli
