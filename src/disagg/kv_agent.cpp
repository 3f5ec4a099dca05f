#include "disagg/kv_agent.h"

#include <chrono>
#include <string>

#include "common/logging.h"

namespace wideserve::disagg {

std::unique_ptr<transfer::TransferAgent> make_kv_agent(const DisaggOptions& opts,
                                                       const engine::KvBufferInfo& kv) {
  transfer::AgentOptions ao;
  ao.name = opts.agent_name;
  ao.listen_host = opts.bind_host;
  ao.advertise_host = opts.advertise_host;
  ao.timeout = std::chrono::milliseconds(static_cast<int64_t>(opts.transfer_timeout_s * 1e3));
  const bool gpu = static_cast<bool>(kv.device_copy);
  std::string backend = opts.transfer_backend;
  if (gpu && backend != "tcp") {
    // Both engines of a pair hold GPU pools (check_compatible refuses a bf16 / f32 pair), so
    // both switch.
    WS_LOG_INFO(
        "KV pool in GPU memory: --disaggregation-transfer-backend {} registers host "
        "memory only here; the tcp agent stages the pool through host memory",
        backend);
    backend = "tcp";
  }
  ao.device_copy = kv.device_copy;
  auto agent = transfer::make_transfer_agent(backend, ao);
  agent->register_memory(kv.base, kv.bytes,
                         gpu ? transfer::MemoryKind::kCuda : transfer::MemoryKind::kHost);
  return agent;
}

}  // namespace wideserve::disagg
