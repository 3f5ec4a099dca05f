// add_worker_flags: the worker's command line (SGLang's flag names, types and choices).
#include <type_traits>

#include "config/choices.h"
#include "config/worker_config.h"

namespace wideserve::config {
namespace {

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

// One valued option; a repeated flag keeps the last value (argparse semantics).
template <typename T>
CLI::Option* opt(CLI::App& app, const std::string& names, T& ref, std::string help,
                 const std::string& group) {
  CLI::Option* o = app.add_option(names, ref, std::move(help));
  o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->group(group);
  if constexpr (!IsOptional<T>::value) o->capture_default_str();
  return o;
}

// One valued option whose value must be one of `choices` (checked by finalize).
CLI::Option* choice(CLI::App& app, const std::string& names, std::string& ref,
                    const std::string& help, Choices choices, const std::string& group) {
  return opt(app, names, ref, help + " {" + join_choices(choices) + "}", group);
}

CLI::Option* flag(CLI::App& app, const std::string& names, bool& ref, std::string help,
                  const std::string& group) {
  CLI::Option* o = app.add_flag(names, ref, std::move(help));
  o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->group(group);
  return o;
}

}  // namespace

void add_worker_flags(CLI::App& app, WorkerConfig& c) {
  const std::string model = "Model";
  opt(app, "--model-path", c.model_path,
      "Checkpoint directory (config.json, safetensors, tokenizer)", model);
  opt(app, "--served-model-name", c.served_model_name,
      "Model name clients send in 'model' (default: --model-path)", model);
  flag(app, "--skip-tokenizer-init", c.skip_tokenizer_init,
       "Token ids in, token ids out (the frontend tokenizes)", model);
  flag(app, "--trust-remote-code", c.trust_remote_code,
       "Accepted for compatibility; wideserve never runs model code", model);
  choice(app, "--engine", c.engine_kind, "Engine: the real model or a timing mock", kEngineKinds,
         model);
  choice(app, "--device", c.device, "Backend device (auto: cuda when a GPU is visible)", kDevices,
         model);
  choice(app, "--load-format", c.load_format,
         "Weights: from the checkpoint, or random of its shapes (dummy, GPU benchmarks)",
         kLoadFormats, model);

  const std::string net = "Request plane and discovery";
  opt(app, "--host", c.host, "Address the request plane binds", net);
  opt(app, "--advertise-host", c.advertise_host,
      "Address published for the frontend (default: 127.0.0.1 if --host is 0.0.0.0 or "
      "127.0.0.1, else --host)",
      net);
  opt(app, "--request-plane-port", c.request_plane_port,
      "TCP port of the request plane (0 = ephemeral)", net);
  opt(app, "--discovery", c.discovery,
      "Registry address (env WIDESERVE_DISCOVERY; default " + std::string(kDefaultDiscovery) + ")",
      net);
  opt(app, "--discovery-lease-ttl-s", c.discovery_lease_ttl_s,
      "etcd discovery: TTL in seconds of the lease the worker's key lives under (default 10)", net);
  opt(app, "--heartbeat-interval-ms", c.heartbeat_interval_ms,
      "Interval of heartbeats to the registry", net);
  opt(app, "--dyn-reasoning-parser", c.dyn_reasoning_parser,
      "Reasoning parser the frontend applies {" + join_choices(kReasoningParsers) + "}", net);
  opt(app, "--dyn-tool-call-parser", c.dyn_tool_call_parser,
      "Tool-call parser the frontend applies {" + join_choices(kToolCallParsers) + "}", net);

  const std::string eng = "Scheduler and KV cache";
  engine::EngineConfig& e = c.engine;
  opt(app, "--max-running-requests", e.max_running_requests, "Most sequences in a batch", eng);
  opt(app, "--chunked-prefill-size", e.chunked_prefill_size, "Prefill tokens per step", eng);
  opt(app, "--max-total-tokens", e.max_total_tokens, "KV pool size in tokens (0 = automatic)", eng);
  opt(app, "--context-length", e.context_length,
      "Max prompt + output tokens (0 = the model's max_position_embeddings)", eng);
  opt(app, "--page-size", e.page_size, "Tokens per KV page", eng);
  opt(app, "--mem-fraction-static", e.mem_fraction_static,
      "GPU memory fraction for weights + KV pool (CUDA backend; accepted)", eng);
  flag(app, "--disable-radix-cache", e.disable_radix_cache, "Disable the prefix cache", eng);
  opt(app, "--decode-log-interval", e.decode_log_interval, "Log every N decode steps", eng);
  choice(app, "--schedule-policy", e.schedule_policy, "Scheduling policy", kSchedulePolicies, eng);
  opt(app, "--watchdog-timeout", c.watchdog_timeout_s,
      "Seconds a forward step may take before the worker aborts", eng);

  const std::string pd = "PD disaggregation";
  choice(app, "--disaggregation-mode", c.disagg.mode, "Role in PD disaggregation",
         kDisaggregationModes, pd);
  opt(app, "--disaggregation-bootstrap-port", c.disagg.bootstrap_port,
      "Prefill-side bootstrap server port", pd);
  choice(app, "--disaggregation-transfer-backend", c.disagg.transfer_backend, "KV transfer backend",
         kTransferBackends, pd);
  flag(app, "--prefill-round-robin-balance", c.disagg.prefill_round_robin_balance,
       "Decode side: expect prefill DP ranks assigned round-robin", pd);

  const std::string par = "Parallelism";
  ParallelConfig& p = c.parallel;
  opt(app, "--tp-size,--tensor-parallel-size,--tp", p.tp_size, "Tensor parallel size", par);
  opt(app, "--dp-size,--data-parallel-size,--dp", p.dp_size, "Data parallel size", par);
  opt(app, "--ep-size,--expert-parallel-size,--ep", p.ep_size, "Expert parallel size", par);
  flag(app, "--enable-dp-attention", p.enable_dp_attention,
       "Data-parallel attention (each DP rank owns its requests and KV cache)", par);
  opt(app, "--nnodes", p.nnodes, "Number of nodes", par);
  opt(app, "--node-rank", p.node_rank, "This node's rank", par);
  opt(app, "--dist-init-addr,--nccl-init-addr", p.dist_init_addr,
      "HOST:PORT of the distributed init (rank 0 node)", par);
  opt(app, "--moe-dense-tp-size", p.moe_dense_tp_size, "TP size of dense MLP layers (1)", par);
  flag(app, "--enable-dp-lm-head", p.enable_dp_lm_head,
       "Each DP rank applies the whole LM head to its own rows (default with "
       "--enable-dp-attention: the head split by vocabulary over the ranks)",
       par);
  choice(app, "--load-balance-method", p.load_balance_method, "Request balancing over DP ranks",
         kLoadBalanceMethods, par);

  const std::string moe = "MoE and expert parallelism";
  MoeConfig& m = c.moe;
  choice(app, "--moe-a2a-backend", m.a2a_backend, "MoE all-to-all backend", kMoeA2aBackends, moe);
  choice(app, "--deepep-mode", m.deepep_mode, "DeepEP mode", kDeepepModes, moe);
  opt(app, "--ep-num-redundant-experts", m.ep_num_redundant_experts,
      "Redundant expert replicas over the EP ranks", moe);
  opt(app, "--ep-dispatch-algorithm", m.ep_dispatch_algorithm,
      "How tokens choose among an expert's replicas {" + join_choices(kEpDispatchAlgorithms) + "}",
      moe);
  choice(app, "--eplb-algorithm", m.eplb_algorithm, "Expert placement algorithm", kEplbAlgorithms,
         moe);
  opt(app, "--init-expert-location", m.init_expert_location,
      "Initial expert placement: trivial or a placement file", moe);
  flag(app, "--enable-eplb", m.enable_eplb, "Rebalance experts online", moe);
  opt(app, "--eplb-rebalance-num-iterations", m.eplb_rebalance_num_iterations,
      "Forward passes between online rebalances", moe);
  flag(app, "--disable-shared-experts-fusion", m.disable_shared_experts_fusion,
       "Accepted (wideserve never fuses shared experts into routed ones)", moe);

  const std::string gpu = "CUDA";
  flag(app, "--disable-cuda-graph", c.cuda.disable_cuda_graph, "Disable CUDA graphs", gpu);
  opt(app, "--cuda-graph-max-bs", c.cuda.cuda_graph_max_bs, "Largest CUDA-graph batch", gpu);
  opt(app, "--attention-backend", c.cuda.attention_backend,
      "Attention kernel {" + join_choices(kAttentionBackends) + "}", gpu);

  const std::string mock = "Mock engine";
  opt(app, "--mock-decode-ms", c.mock.decode_ms, "Time of one decode step", mock);
  opt(app, "--mock-prefill-tokens-per-s", c.mock.prefill_tokens_per_s, "Prefill speed", mock);
  opt(app, "--mock-vocab-size", c.mock.vocab_size, "Vocabulary size of sampled ids", mock);

  const std::string log = "Logging";
  choice(app, "--log-level", c.log_level, "Log level", kLogLevels, log);
}

}  // namespace wideserve::config
