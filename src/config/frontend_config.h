// Configuration of `wideserve frontend` (the seed's `python3 -m dynamo.frontend`): Dynamo's flag
// names where Dynamo has the flag. finalize_frontend_config validates once; features of later
// issues fail with Error(kUnimplemented) "not supported yet: --FLAG VALUE (ISSUE issue)".
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/discovery.h"
#include "config/env.h"

namespace wideserve::config {

// The frontend's whole configuration.
struct FrontendConfig {
  std::string http_host = "0.0.0.0";    // --http-host
  int64_t http_port = 8000;             // --http-port
  int64_t http_threads = 0;             // --http-threads (finalize: 0 -> min(4, hardware threads))
  int64_t max_body_bytes = 32LL << 20;  // --max-body-bytes
  int64_t max_concurrent_requests = 4096;        // --max-concurrent-requests (beyond: 429)
  std::string router_mode = "round-robin";       // --router-mode round-robin|random|kv
  double router_prefill_load_scale = 4.0;        // --router-prefill-load-scale (kv cost)
  double router_temperature = 0.0;               // --router-temperature (kv: 0 = cheapest)
  std::string discovery;                         // --discovery / WIDESERVE_DISCOVERY / default
  DiscoveryAddress discovery_address;            // parsed by finalize
  std::optional<int64_t> discovery_lease_ttl_s;  // --discovery-lease-ttl-s (etcd; finalize puts
                                                 // it into `discovery` as ?lease_ttl_s=N)
  int64_t worker_ttl_ms = 3000;                  // --worker-ttl-ms: forget a silent worker
  std::string namespace_name = "dynamo";         // --namespace (Dynamo; accepted)
  std::optional<int64_t> kv_cache_block_size;    // --kv-cache-block-size (Dynamo; accepted)
  std::string log_level = "info";                // --log-level
  int64_t migration_limit = 0;                   // --migration-limit: moves per choice
  std::optional<double> busy_threshold;          // --busy-threshold: KV usage fraction -> 503
  std::optional<int64_t> busy_queue_limit;       // --busy-queue-limit: queued requests -> 503

  std::vector<std::string> warnings;  // filled by finalize (unknown WIDESERVE_* variables)
};

// Registers every frontend flag on `app`, writing into `cfg` (the last repeated flag wins).
void add_frontend_flags(CLI::App& app, FrontendConfig& cfg);

// Applies `env` (WIDESERVE_DISCOVERY) and validates (messages name the flag).
void finalize_frontend_config(FrontendConfig& cfg, const EnvMap& env);
// The same with the process environment.
void finalize_frontend_config(FrontendConfig& cfg);

}  // namespace wideserve::config
