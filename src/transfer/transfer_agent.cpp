#include "transfer/transfer_agent.h"

#include "common/check.h"
#include "transfer/agent_core.h"
#include "transfer/tcp_agent.h"
#include "transfer/ucx_agent.h"

namespace wideserve::transfer {

const char* memory_kind_name(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::kHost:
      return "host";
    case MemoryKind::kCuda:
      return "cuda";
  }
  return "?";
}

const char* transfer_state_name(TransferState state) {
  switch (state) {
    case TransferState::kPending:
      return "pending";
    case TransferState::kDone:
      return "done";
    case TransferState::kFailed:
      return "failed";
  }
  return "?";
}

std::vector<WriteOp> merge_adjacent_ops(std::span<const WriteOp> ops) {
  std::vector<WriteOp> out;
  for (const WriteOp& op : ops) {
    if (op.length == 0) continue;
    if (!out.empty()) {
      WriteOp& prev = out.back();
      if (static_cast<const char*>(prev.local) + prev.length == op.local &&
          prev.remote + prev.length == op.remote) {
        prev.length += op.length;
        continue;
      }
    }
    out.push_back(op);
  }
  return out;
}

std::unique_ptr<TransferAgent> make_transfer_agent(const std::string& backend,
                                                   const AgentOptions& opts) {
  WS_CHECK_ARG(!opts.name.empty(), "transfer agent needs a name");
  WS_CHECK_ARG(opts.timeout.count() > 0, "transfer agent timeout must be positive");
  if (backend == "ucx" || backend == "nixl") return make_ucx_agent(opts);
  if (backend == "tcp") return make_tcp_agent(opts);
  if (backend == "mooncake") {
    WS_THROW(kUnimplemented,
             "not supported yet/not applicable: mooncake (--disaggregation-transfer-backend "
             "mooncake); use nixl, ucx or tcp");
  }
  WS_THROW(kInvalidArgument,
           "unknown --disaggregation-transfer-backend '{}' (expected nixl, ucx or tcp)", backend);
}

}  // namespace wideserve::transfer
