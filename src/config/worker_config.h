// Configuration of one `wideserve worker` (the seed's `python3 -m dynamo.sglang`): every flag of
// the seed's worker commands with SGLang's names, types and choices, our own worker flags, and the
// environment variables the seed sets. Parse with add_worker_flags, then finalize_worker_config
// once; after that the tree is validated and everything we cannot do yet has failed.
//
// finalize_worker_config checks, in this order (so the first problem reported is deterministic):
//   1. environment variables (malformed values name the variable);
//   2. flag values (types, ranges, choices; the message names the flag);
//   3. support policy: the first flag asking for a feature of a later issue, in the order
//      --disaggregation-mode, --dp-size, --tp-size, --ep-size, --enable-dp-attention, --nnodes,
//      --moe-a2a-backend, --enable-dp-lm-head, --ep-num-redundant-experts, --enable-eplb, --device
//      fails with Error(kUnimplemented) "not supported yet: --FLAG VALUE (ISSUE issue)".
// docs/flags.md lists every flag and variable with its status.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/discovery.h"
#include "config/env.h"
#include "engine/engine_config.h"

namespace wideserve::config {

// PD disaggregation (PD issue): only mode "null" runs today.
struct DisaggregationConfig {
  std::string mode = "null";                  // --disaggregation-mode null|prefill|decode
  int64_t bootstrap_port = 8998;              // --disaggregation-bootstrap-port
  std::string transfer_backend = "mooncake";  // --disaggregation-transfer-backend
  bool prefill_round_robin_balance = false;   // --prefill-round-robin-balance
};

// Ranks and nodes (wide EP issue): one rank on one node today.
struct ParallelConfig {
  int64_t tp_size = 1;                              // --tp-size / --tensor-parallel-size / --tp
  int64_t dp_size = 1;                              // --dp-size / --data-parallel-size / --dp
  int64_t ep_size = 1;                              // --ep-size / --expert-parallel-size / --ep
  bool enable_dp_attention = false;                 // --enable-dp-attention
  int64_t nnodes = 1;                               // --nnodes
  int64_t node_rank = 0;                            // --node-rank
  std::string dist_init_addr;                       // --dist-init-addr HOST:PORT (empty = unset)
  std::optional<int64_t> moe_dense_tp_size;         // --moe-dense-tp-size (SGLang allows only 1)
  bool enable_dp_lm_head = false;                   // --enable-dp-lm-head
  std::string load_balance_method = "round_robin";  // --load-balance-method
};

// Mixture-of-experts communication and placement (wide EP issue).
struct MoeConfig {
  std::string a2a_backend = "none";      // --moe-a2a-backend
  std::string deepep_mode = "auto";      // --deepep-mode normal|low_latency|auto
  int64_t ep_num_redundant_experts = 0;  // --ep-num-redundant-experts
  std::string ep_dispatch_algorithm;  // --ep-dispatch-algorithm static|dynamic|fake (empty = unset)
  std::string eplb_algorithm = "auto";           // --eplb-algorithm
  std::string init_expert_location = "trivial";  // --init-expert-location
  bool enable_eplb = false;                      // --enable-eplb
  int64_t eplb_rebalance_num_iterations = 1000;  // --eplb-rebalance-num-iterations
  bool disable_shared_experts_fusion = false;  // --disable-shared-experts-fusion (no fusion exists)
};

// GPU-only settings (CUDA backend issue); --mem-fraction-static lives in engine.
struct CudaConfig {
  bool disable_cuda_graph = false;           // --disable-cuda-graph
  std::optional<int64_t> cuda_graph_max_bs;  // --cuda-graph-max-bs
  std::string attention_backend;             // --attention-backend (empty = automatic)
};

// The seed's SGLANG_* integer/boolean environment variables (WIDESERVE_* spellings win).
struct EnvSettings {
  int64_t heartbeat_max_failure = 2;  // SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE
  int64_t bootstrap_timeout_s = 300;  // SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT
  int64_t waiting_timeout_s = 300;    // SGLANG_DISAGGREGATION_WAITING_TIMEOUT
  int64_t deepep_num_max_dispatch_tokens_per_rank =
      128;                               // SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK
  bool hack_seq_bootstrap_room = false;  // SGLANG_HACK_SEQ_BOOTSTRAP_ROOM
};

// The mock engine (--engine mock): timing model instead of the real forward pass.
struct MockConfig {
  double decode_ms = 10.0;                 // --mock-decode-ms: time of one decode step
  double prefill_tokens_per_s = 100000.0;  // --mock-prefill-tokens-per-s
  int64_t vocab_size = 129280;             // --mock-vocab-size
};

// One worker's whole configuration.
struct WorkerConfig {
  engine::EngineConfig engine;  // scheduler / KV flags (SGLang names)

  std::string model_path;            // --model-path (required)
  std::string served_model_name;     // --served-model-name (finalize: defaults to model_path)
  bool skip_tokenizer_init = false;  // --skip-tokenizer-init (token ids in and out)
  bool trust_remote_code = false;    // --trust-remote-code (accepted; no code is ever run)

  std::string host = "0.0.0.0";    // --host: address the request plane binds
  std::string advertise_host;      // --advertise-host (finalize: 127.0.0.1 for 0.0.0.0/127.0.0.1)
  int64_t request_plane_port = 0;  // --request-plane-port (0 = ephemeral)
  std::string discovery;           // --discovery / WIDESERVE_DISCOVERY / kDefaultDiscovery
  DiscoveryAddress discovery_address;            // parsed by finalize
  std::optional<int64_t> discovery_lease_ttl_s;  // --discovery-lease-ttl-s (etcd; finalize puts
                                                 // it into `discovery` as ?lease_ttl_s=N)
  int64_t heartbeat_interval_ms = 1000;          // --heartbeat-interval-ms

  std::string engine_kind = "model";  // --engine model|mock
  MockConfig mock;
  std::string device = "auto";       // --device auto|cpu|cuda (auto: cuda when a GPU is visible)
  std::string load_format = "auto";  // --load-format auto|safetensors|dummy (dummy: random weights)

  std::string log_level = "info";     // --log-level
  double watchdog_timeout_s = 300.0;  // --watchdog-timeout (seconds)
  std::string dyn_reasoning_parser;   // --dyn-reasoning-parser (empty = none)
  std::string dyn_tool_call_parser;   // --dyn-tool-call-parser (empty = none)

  DisaggregationConfig disagg;
  ParallelConfig parallel;
  MoeConfig moe;
  CudaConfig cuda;
  EnvSettings env;

  // Filled by finalize: "not applicable on this system" items (MNNVL, Mooncake, DeepGEMM
  // cache, attention backend on CPU), warnings (unknown variables), NCCL_* passed through.
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
  std::map<std::string, std::string> nccl_env;
};

// Registers every worker flag on `app`, writing into `cfg` (a repeated flag: the last one wins,
// as with SGLang's argparse; both --flag value and --flag=value work).
void add_worker_flags(CLI::App& app, WorkerConfig& cfg);

// Applies `env`, validates, and enforces the support policy (see the top of this file). Throws
// Error(kInvalidArgument) naming the flag or variable, or Error(kUnimplemented).
void finalize_worker_config(WorkerConfig& cfg, const EnvMap& env);
// The same with the process environment.
void finalize_worker_config(WorkerConfig& cfg);

// Logs notes (once, at info), warnings and the attention-backend note; call after finalize.
void log_worker_config_notes(const WorkerConfig& cfg);

// True for attention kernels that only run on Blackwell (SM100): cutlass_mla, trtllm_mla.
bool is_blackwell_only_attention_backend(std::string_view backend);

// What --attention-backend means on `device` ("" when nothing to say): on cpu, that it does not
// apply and the CPU MLA attention runs; Blackwell-only kernels are named as such.
std::string attention_backend_note(std::string_view backend, std::string_view device);

}  // namespace wideserve::config
