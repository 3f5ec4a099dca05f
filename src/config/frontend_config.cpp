#include "config/frontend_config.h"

#include <algorithm>
#include <thread>

#include "common/check.h"
#include "config/choices.h"

namespace wideserve::config {
namespace {

template <typename T>
CLI::Option* opt(CLI::App& app, const std::string& names, T& ref, std::string help) {
  CLI::Option* o = app.add_option(names, ref, std::move(help));
  o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  return o;
}

}  // namespace

void add_frontend_flags(CLI::App& app, FrontendConfig& c) {
  opt(app, "--http-host", c.http_host, "Address the HTTP server binds")->capture_default_str();
  opt(app, "--http-port", c.http_port, "HTTP port")->capture_default_str();
  opt(app, "--http-threads", c.http_threads, "HTTP I/O threads (0 = min(4, hardware threads))")
      ->capture_default_str();
  opt(app, "--max-body-bytes", c.max_body_bytes, "Largest request body")->capture_default_str();
  opt(app, "--max-concurrent-requests", c.max_concurrent_requests,
      "Requests in flight before new ones are refused")
      ->capture_default_str();
  opt(app, "--router-mode", c.router_mode,
      "How a worker is chosen {" + join_choices(kRouterModes) + "}")
      ->capture_default_str();
  opt(app, "--router-prefill-load-scale", c.router_prefill_load_scale,
      "kv router: weight of uncached prompt blocks against active blocks in the cost")
      ->capture_default_str();
  opt(app, "--router-temperature", c.router_temperature,
      "kv router: 0 picks the cheapest worker, > 0 samples by softmax of normalised costs")
      ->capture_default_str();
  opt(app, "--discovery", c.discovery,
      "Registry address (env WIDESERVE_DISCOVERY; default " + std::string(kDefaultDiscovery) + ")");
  opt(app, "--discovery-lease-ttl-s", c.discovery_lease_ttl_s,
      "etcd discovery: workers' lease TTL in seconds (default 10); the frontend warns when etcd "
      "has been unreachable for longer");
  opt(app, "--worker-ttl-ms", c.worker_ttl_ms, "Forget a worker silent this long (embedded)")
      ->capture_default_str();
  opt(app, "--namespace", c.namespace_name, "Dynamo namespace (accepted)")->capture_default_str();
  opt(app, "--kv-cache-block-size", c.kv_cache_block_size,
      "KV block size for routing (accepted; workers publish their page size)");
  opt(app, "--log-level", c.log_level, "Log level {" + join_choices(kLogLevels) + "}")
      ->capture_default_str();
  opt(app, "--migration-limit", c.migration_limit,
      "Times each choice of a request may move to another worker when its worker dies "
      "(0 = the stream ends with an error)")
      ->capture_default_str();
  opt(app, "--busy-threshold", c.busy_threshold,
      "KV usage fraction (active pages / total) above which a worker is busy; all busy: 503");
  opt(app, "--busy-queue-limit", c.busy_queue_limit,
      "Queued requests above which a worker is busy; all busy: 503");
}

void finalize_frontend_config(FrontendConfig& c, const EnvMap& env) {
  c.warnings.clear();
  if (c.discovery.empty()) {
    auto v = env_value(env, "WIDESERVE_DISCOVERY");
    c.discovery = v && !v->empty() ? *v : std::string(kDefaultDiscovery);
  }
  static constexpr std::string_view kWatched[] = {"WIDESERVE_"};
  collect_unknown_env(env, kWatched, is_known_wideserve_env, c.warnings);

  WS_CHECK_ARG(!c.http_host.empty(), "--http-host must not be empty");
  WS_CHECK_ARG(c.http_port >= 0 && c.http_port <= 65535,
               "--http-port must be in [0, 65535] (got {})", c.http_port);
  WS_CHECK_ARG(c.http_threads >= 0, "--http-threads must be >= 0 (got {})", c.http_threads);
  if (c.http_threads == 0)
    c.http_threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 4);
  WS_CHECK_ARG(c.max_body_bytes >= 1024, "--max-body-bytes must be >= 1024 (got {})",
               c.max_body_bytes);
  WS_CHECK_ARG(c.max_concurrent_requests >= 1, "--max-concurrent-requests must be >= 1 (got {})",
               c.max_concurrent_requests);
  check_choice("--router-mode", c.router_mode, kRouterModes);
  c.discovery_address = parse_discovery("--discovery", c.discovery);
  c.discovery = apply_discovery_lease_ttl(c.discovery, c.discovery_address, c.discovery_lease_ttl_s,
                                          c.warnings);
  WS_CHECK_ARG(c.worker_ttl_ms >= 1, "--worker-ttl-ms must be >= 1 (got {})", c.worker_ttl_ms);
  WS_CHECK_ARG(!c.namespace_name.empty(), "--namespace must not be empty");
  if (c.kv_cache_block_size)
    WS_CHECK_ARG(*c.kv_cache_block_size >= 1, "--kv-cache-block-size must be >= 1 (got {})",
                 *c.kv_cache_block_size);
  check_choice("--log-level", c.log_level, kLogLevels);
  WS_CHECK_ARG(c.migration_limit >= 0, "--migration-limit must be >= 0 (got {})",
               c.migration_limit);
  if (c.busy_threshold)
    WS_CHECK_ARG(*c.busy_threshold >= 0, "--busy-threshold must be >= 0 (got {})",
                 *c.busy_threshold);
  if (c.busy_queue_limit)
    WS_CHECK_ARG(*c.busy_queue_limit >= 0, "--busy-queue-limit must be >= 0 (got {})",
                 *c.busy_queue_limit);
  WS_CHECK_ARG(c.router_prefill_load_scale >= 0,
               "--router-prefill-load-scale must be >= 0 (got {})", c.router_prefill_load_scale);
  WS_CHECK_ARG(c.router_temperature >= 0, "--router-temperature must be >= 0 (got {})",
               c.router_temperature);

}

void finalize_frontend_config(FrontendConfig& c) {
  finalize_frontend_config(c, process_env());
}

}  // namespace wideserve::config
