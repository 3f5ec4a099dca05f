// Settings of a disaggregated engine (built from config::WorkerConfig by the CLI).
#pragma once

#include <cstdint>
#include <string>

namespace wideserve::disagg {

struct DisaggOptions {
  std::string mode;                   // "prefill" | "decode"
  std::string bind_host = "0.0.0.0";  // --host: bootstrap server and control socket
  std::string advertise_host = "127.0.0.1";
  int32_t bootstrap_port = 8998;          // --disaggregation-bootstrap-port (prefill)
  std::string transfer_backend = "nixl";  // --disaggregation-transfer-backend
  std::string agent_name;                 // unique per worker
  double bootstrap_timeout_s = 300;       // SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT (prefill)
  double waiting_timeout_s = 300;         // SGLANG_DISAGGREGATION_WAITING_TIMEOUT (decode)
  int64_t heartbeat_max_failure = 2;      // SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE (decode)
  double heartbeat_interval_s = 5.0;      // WIDESERVE_DISAGGREGATION_HEARTBEAT_INTERVAL (decode)
  double transfer_timeout_s = 10.0;       // a transfer making no progress this long fails
  int64_t max_running_requests = 256;     // decode: running + in transfer
};

}  // namespace wideserve::disagg
