// finalize_worker_config: environment, validation, support policy (order: see worker_config.h).
#include "config/worker_config.h"

#include <algorithm>

#include "common/check.h"
#include "common/logging.h"
#include "config/choices.h"

namespace wideserve::config {
namespace {

constexpr std::string_view kPdIssue = "PD disaggregation issue";
constexpr std::string_view kWideEpIssue = "wide expert parallelism issue";
// The seed's own combination; no issue covers it yet: every DP rank needs its own KV sender /
// receiver and bootstrap route (SGLang's per-rank /route), the DP controller following the room.
constexpr std::string_view kWideEpPdGap =
    "prefill/decode disaggregation of a wide-EP worker is not built yet; either works alone";

// Variables that name hardware or libraries this system lacks: noted, never an error.
struct NotApplicable {
  std::string_view name;
  std::string_view what;
};
constexpr NotApplicable kNotApplicableEnv[] = {
    {"MC_FORCE_MNNVL", "MNNVL (multi-node NVLink) for Mooncake"},
    {"NCCL_MNNVL_ENABLE", "MNNVL (multi-node NVLink) for NCCL"},
    {"MC_TE_METRIC", "Mooncake transfer-engine metrics"},
    {"SGLANG_MOONCAKE_CUSTOM_MEM_POOL", "Mooncake custom memory pool"},
    {"SGLANG_DG_CACHE_DIR", "DeepGEMM JIT kernel cache"},
};

// Variables the seed sets that change nothing here.
constexpr std::string_view kNoOpEnv[] = {
    "DYN_SKIP_SGLANG_LOG_FORMATTING",        "PYTHONUNBUFFERED",
    "SGLANG_USE_MESSAGE_QUEUE_BROADCASTER",  "SGLANG_DISABLE_TP_MEMORY_INBALANCE_CHECK",
    "SGL_DISABLE_TP_MEMORY_INBALANCE_CHECK",
};

// The parsed integer variables: SGLANG_ name, WIDESERVE_ name ("" if none), target, minimum.
struct IntEnv {
  std::string_view sglang;
  std::string_view wideserve;
  int64_t EnvSettings::*field;
  int64_t min_value;
};
constexpr IntEnv kIntEnv[] = {
    {"SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE",
     "WIDESERVE_DISAGGREGATION_HEARTBEAT_MAX_FAILURE", &EnvSettings::heartbeat_max_failure, 1},
    {"SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT", "WIDESERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT",
     &EnvSettings::bootstrap_timeout_s, 1},
    {"SGLANG_DISAGGREGATION_WAITING_TIMEOUT", "WIDESERVE_DISAGGREGATION_WAITING_TIMEOUT",
     &EnvSettings::waiting_timeout_s, 1},
    {"SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK", "",
     &EnvSettings::deepep_num_max_dispatch_tokens_per_rank, 1},
};
constexpr std::string_view kHackSeqBootstrapRoom = "SGLANG_HACK_SEQ_BOOTSTRAP_ROOM";

template <typename Range>
bool contains(const Range& r, std::string_view name) {
  return std::find(std::begin(r), std::end(r), name) != std::end(r);
}

bool is_read_env(std::string_view name) {
  if (contains(kNoOpEnv, name) || name == kHackSeqBootstrapRoom) return true;
  for (const auto& n : kNotApplicableEnv)
    if (n.name == name) return true;
  for (const auto& i : kIntEnv)
    if (i.sglang == name || i.wideserve == name) return true;
  return is_known_wideserve_env(name);
}

void apply_env(WorkerConfig& c, const EnvMap& env) {
  for (const auto& i : kIntEnv) {
    // The WIDESERVE_ spelling wins over SGLang's.
    for (std::string_view name : {i.wideserve, i.sglang}) {
      if (name.empty()) continue;
      if (auto v = env_value(env, std::string(name))) {
        c.env.*i.field = parse_env_int(name, *v, i.min_value);
        break;
      }
    }
  }
  if (auto v = env_value(env, std::string(kHackSeqBootstrapRoom)))
    c.env.hack_seq_bootstrap_room = parse_env_bool(kHackSeqBootstrapRoom, *v);
  for (const auto& n : kNotApplicableEnv)
    if (auto v = env_value(env, std::string(n.name)))
      c.notes.push_back(fmt::format("{}={} ({})", n.name, *v, n.what));
  for (const auto& [name, value] : env)
    if (name.starts_with("NCCL_")) c.nccl_env[name] = value;
  if (c.discovery.empty()) {
    auto v = env_value(env, "WIDESERVE_DISCOVERY");
    c.discovery = v && !v->empty() ? *v : std::string(kDefaultDiscovery);
  }
  static constexpr std::string_view kWatched[] = {"SGLANG_", "SGL_", "WIDESERVE_"};
  collect_unknown_env(env, kWatched, is_read_env, c.warnings);
}

// '-' and '_' are interchangeable in parser names; stored with '_'.
std::string normalize_parser(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

void validate(WorkerConfig& c) {
  check_choice("--schedule-policy", c.engine.schedule_policy, kSchedulePolicies);
  c.engine.validate();
  WS_CHECK_ARG(!c.model_path.empty(), "--model-path is required");
  if (c.served_model_name.empty()) c.served_model_name = c.model_path;
  check_choice("--engine", c.engine_kind, kEngineKinds);
  check_choice("--device", c.device, kDevices);
  check_choice("--load-format", c.load_format, kLoadFormats);
  check_choice("--log-level", c.log_level, kLogLevels);
  WS_CHECK_ARG(c.watchdog_timeout_s > 0, "--watchdog-timeout must be > 0 (got {})",
               c.watchdog_timeout_s);

  WS_CHECK_ARG(!c.host.empty(), "--host must not be empty");
  if (c.advertise_host.empty())
    c.advertise_host = (c.host == "0.0.0.0" || c.host == "127.0.0.1") ? "127.0.0.1" : c.host;
  WS_CHECK_ARG(c.request_plane_port >= 0 && c.request_plane_port <= 65535,
               "--request-plane-port must be in [0, 65535] (got {})", c.request_plane_port);
  c.discovery_address = parse_discovery("--discovery", c.discovery);
  c.discovery = apply_discovery_lease_ttl(c.discovery, c.discovery_address, c.discovery_lease_ttl_s,
                                          c.warnings);
  WS_CHECK_ARG(c.heartbeat_interval_ms >= 1, "--heartbeat-interval-ms must be >= 1 (got {})",
               c.heartbeat_interval_ms);
  if (!c.dyn_reasoning_parser.empty()) {
    c.dyn_reasoning_parser = normalize_parser(c.dyn_reasoning_parser);
    check_choice("--dyn-reasoning-parser", c.dyn_reasoning_parser, kReasoningParsers);
  }
  if (!c.dyn_tool_call_parser.empty()) {
    c.dyn_tool_call_parser = normalize_parser(c.dyn_tool_call_parser);
    check_choice("--dyn-tool-call-parser", c.dyn_tool_call_parser, kToolCallParsers);
  }

  WS_CHECK_ARG(c.mock.decode_ms >= 0, "--mock-decode-ms must be >= 0 (got {})", c.mock.decode_ms);
  WS_CHECK_ARG(c.mock.prefill_tokens_per_s > 0, "--mock-prefill-tokens-per-s must be > 0 (got {})",
               c.mock.prefill_tokens_per_s);
  WS_CHECK_ARG(c.mock.vocab_size >= 1, "--mock-vocab-size must be >= 1 (got {})",
               c.mock.vocab_size);

  check_choice("--disaggregation-mode", c.disagg.mode, kDisaggregationModes);
  WS_CHECK_ARG(c.disagg.bootstrap_port >= 1 && c.disagg.bootstrap_port <= 65535,
               "--disaggregation-bootstrap-port must be in [1, 65535] (got {})",
               c.disagg.bootstrap_port);
  check_choice("--disaggregation-transfer-backend", c.disagg.transfer_backend, kTransferBackends);

  const ParallelConfig& p = c.parallel;
  WS_CHECK_ARG(p.tp_size >= 1, "--tp-size must be >= 1 (got {})", p.tp_size);
  WS_CHECK_ARG(p.dp_size >= 1, "--dp-size must be >= 1 (got {})", p.dp_size);
  WS_CHECK_ARG(p.ep_size >= 1, "--ep-size must be >= 1 (got {})", p.ep_size);
  WS_CHECK_ARG(p.nnodes >= 1, "--nnodes must be >= 1 (got {})", p.nnodes);
  WS_CHECK_ARG(p.node_rank >= 0 && p.node_rank < p.nnodes,
               "--node-rank must be in [0, --nnodes {}) (got {})", p.nnodes, p.node_rank);
  if (p.enable_dp_attention)
    WS_CHECK_ARG(p.tp_size % p.dp_size == 0,
                 "--tp-size ({}) must be a multiple of --dp-size ({}) with --enable-dp-attention",
                 p.tp_size, p.dp_size);
  if (!p.dist_init_addr.empty()) {
    std::string host;
    int port = 0;
    parse_host_port("--dist-init-addr", p.dist_init_addr, host, port);
  }
  if (p.moe_dense_tp_size)
    WS_CHECK_ARG(*p.moe_dense_tp_size == 1, "--moe-dense-tp-size must be 1 (got {})",
                 *p.moe_dense_tp_size);
  check_choice("--load-balance-method", p.load_balance_method, kLoadBalanceMethods);

  const MoeConfig& m = c.moe;
  check_choice("--moe-a2a-backend", m.a2a_backend, kMoeA2aBackends);
  check_choice("--deepep-mode", m.deepep_mode, kDeepepModes);
  WS_CHECK_ARG(m.ep_num_redundant_experts >= 0, "--ep-num-redundant-experts must be >= 0 (got {})",
               m.ep_num_redundant_experts);
  if (!m.ep_dispatch_algorithm.empty())
    check_choice("--ep-dispatch-algorithm", m.ep_dispatch_algorithm, kEpDispatchAlgorithms);
  check_choice("--eplb-algorithm", m.eplb_algorithm, kEplbAlgorithms);
  WS_CHECK_ARG(!m.init_expert_location.empty(), "--init-expert-location must not be empty");

  if (c.cuda.cuda_graph_max_bs)
    WS_CHECK_ARG(*c.cuda.cuda_graph_max_bs >= 1, "--cuda-graph-max-bs must be >= 1 (got {})",
                 *c.cuda.cuda_graph_max_bs);
  if (!c.cuda.attention_backend.empty())
    check_choice("--attention-backend", c.cuda.attention_backend, kAttentionBackends);
}

[[noreturn]] void unsupported(std::string_view flag, std::string_view value,
                              std::string_view issue) {
  if (value.empty()) WS_THROW(kUnimplemented, "not supported yet: {} ({})", flag, issue);
  WS_THROW(kUnimplemented, "not supported yet: {} {} ({})", flag, value, issue);
}

void enforce_support(const WorkerConfig& c) {
  const ParallelConfig& p = c.parallel;
  if (c.disagg.mode != "null") {
    const std::string& b = c.disagg.transfer_backend;
    if (b == "ascend" || b == "fake" || b == "mori")
      WS_THROW(kUnimplemented,
               "--disaggregation-transfer-backend {} is not available here; use nixl, ucx or tcp",
               b);
  }
  // Wide EP (CPU): N ranks = --tp-size N --dp-size N --enable-dp-attention, experts sharded.
  if (p.tp_size > 1 && !(p.enable_dp_attention && p.dp_size == p.tp_size))
    unsupported("--tp-size",
                std::to_string(p.tp_size) + " without --enable-dp-attention --dp-size " +
                    std::to_string(p.tp_size) + " (attention tensor parallelism)",
                kWideEpIssue);
  if (p.tp_size == 1 && (p.dp_size > 1 || p.enable_dp_attention || p.nnodes > 1))
    WS_THROW(kInvalidArgument,
             "--dp-size/--enable-dp-attention/--nnodes need --tp-size N --dp-size N "
             "--enable-dp-attention");
  if (p.ep_size > 1 && p.ep_size != p.tp_size)
    WS_THROW(kInvalidArgument, "--ep-size must be 1 or --tp-size ({}), got {}", p.tp_size,
             p.ep_size);
  if (p.nnodes > 1 && p.tp_size % p.nnodes != 0)
    WS_THROW(kInvalidArgument, "--tp-size {} is not divisible by --nnodes {}", p.tp_size, p.nnodes);
  if (p.nnodes > 1 && p.dist_init_addr.empty())
    WS_THROW(kInvalidArgument, "--nnodes {} needs --dist-init-addr HOST:PORT", p.nnodes);
  if (c.moe.a2a_backend != "none" && c.moe.a2a_backend != "deepep")
    unsupported("--moe-a2a-backend", c.moe.a2a_backend, kWideEpIssue);
  if (c.moe.ep_dispatch_algorithm == "fake")
    unsupported("--ep-dispatch-algorithm", "fake", kWideEpIssue);
  if (p.tp_size > 1 && c.disagg.mode != "null")
    unsupported("--disaggregation-mode with --tp-size > 1:", c.disagg.mode, kWideEpPdGap);
  if (p.tp_size > 1 && c.engine_kind == "mock")
    WS_THROW(kInvalidArgument, "--engine mock runs one rank (drop --tp-size)");
  WS_CHECK_ARG(c.moe.eplb_rebalance_num_iterations >= 1,
               "--eplb-rebalance-num-iterations must be >= 1 (got {})",
               c.moe.eplb_rebalance_num_iterations);
}

}  // namespace

void finalize_worker_config(WorkerConfig& cfg, const EnvMap& env) {
  cfg.notes.clear();
  cfg.warnings.clear();
  cfg.nccl_env.clear();
  apply_env(cfg, env);
  validate(cfg);
  enforce_support(cfg);
}

void finalize_worker_config(WorkerConfig& cfg) {
  finalize_worker_config(cfg, process_env());
}

bool is_blackwell_only_attention_backend(std::string_view backend) {
  return backend == "cutlass_mla" || backend == "trtllm_mla";
}

std::string attention_backend_note(std::string_view backend, std::string_view device) {
  if (backend.empty()) return {};
  const std::string blackwell = is_blackwell_only_attention_backend(backend)
                                    ? fmt::format(" ({} is a Blackwell (SM100) kernel)", backend)
                                    : std::string();
  if (device == "cpu")
    return fmt::format(
        "--attention-backend {} does not apply on the CPU backend{}; the CPU MLA attention runs "
        "(expanded form for prefill, absorbed form for decode)",
        backend, blackwell);
  if (!blackwell.empty())
    return fmt::format(
        "--attention-backend {}{}: on Hopper (SM90) a FlashMLA-style absorbed MLA kernel runs "
        "instead",
        backend, blackwell);
  return {};
}

void log_worker_config_notes(const WorkerConfig& cfg) {
  std::string na;
  for (const auto& n : cfg.notes) na += (na.empty() ? "" : "; ") + n;
  if (!na.empty()) WS_LOG_INFO("not applicable on this system: {}", na);
  for (const auto& w : cfg.warnings) WS_LOG_WARN("{}", w);
  if (auto note = attention_backend_note(cfg.cuda.attention_backend, cfg.device); !note.empty())
    WS_LOG_INFO("{}", note);
  if (!cfg.nccl_env.empty()) {
    std::string names;
    for (const auto& [k, v] : cfg.nccl_env) names += (names.empty() ? "" : ", ") + k + "=" + v;
    WS_LOG_DEBUG("NCCL environment passed through: {}", names);
  }
}

}  // namespace wideserve::config
