// WorkerConfig: flag parsing, validation messages, support policy, environment variables.
#include <gtest/gtest.h>

#include "config/worker_config.h"
#include "config_test_util.h"

namespace wideserve::config {
namespace {

using testing::error_of;

WorkerConfig parse(std::vector<std::string> args, bool with_model = true) {
  if (with_model) args.insert(args.begin(), {"--model-path", "/models/tiny"});
  WorkerConfig cfg;
  testing::parse_args(args, cfg, add_worker_flags);
  return cfg;
}

// The error finalize throws for `args` with `env`.
std::optional<Error> finalize_error(std::vector<std::string> args, const EnvMap& env = {}) {
  WorkerConfig cfg = parse(std::move(args));
  return error_of([&] { finalize_worker_config(cfg, env); });
}

TEST(WorkerConfig, DefaultsFinalize) {
  WorkerConfig c = parse({});
  finalize_worker_config(c, {});
  EXPECT_EQ(c.served_model_name, "/models/tiny");
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.advertise_host, "127.0.0.1");
  EXPECT_EQ(c.request_plane_port, 0);
  EXPECT_EQ(c.discovery, "embedded://127.0.0.1:29400");
  EXPECT_EQ(c.discovery_address.host, "127.0.0.1");
  EXPECT_EQ(c.discovery_address.port, 29400);
  EXPECT_EQ(c.engine_kind, "model");
  EXPECT_EQ(c.device, "auto");
  EXPECT_EQ(c.load_format, "auto");
  EXPECT_DOUBLE_EQ(c.mock.decode_ms, 10.0);
  EXPECT_DOUBLE_EQ(c.mock.prefill_tokens_per_s, 100000.0);
  EXPECT_EQ(c.mock.vocab_size, 129280);
  EXPECT_EQ(c.heartbeat_interval_ms, 1000);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_TRUE(c.notes.empty());
  EXPECT_TRUE(c.warnings.empty());
}

TEST(WorkerConfig, FlagSpellings) {
  // --flag value, --flag=value, SGLang's aliases, and the last repeated flag wins.
  WorkerConfig c = parse({"--tp",
                          "1",
                          "--tensor-parallel-size=1",
                          "--page-size=32",
                          "--page-size",
                          "64",
                          "--data-parallel-size",
                          "1",
                          "--host=10.1.2.3",
                          "--request-plane-port",
                          "5555",
                          "--dyn-reasoning-parser",
                          "deepseek-r1",
                          "--dyn-tool-call-parser",
                          "deepseek_v3",
                          "--disable-radix-cache",
                          "--engine",
                          "mock",
                          "--mock-decode-ms",
                          "2.5",
                          "--served-model-name",
                          "r1",
                          "--schedule-policy",
                          "fcfs"});
  finalize_worker_config(c, {});
  EXPECT_EQ(c.engine.page_size, 64);
  EXPECT_EQ(c.host, "10.1.2.3");
  EXPECT_EQ(c.advertise_host, "10.1.2.3");
  EXPECT_EQ(c.request_plane_port, 5555);
  EXPECT_EQ(c.dyn_reasoning_parser, "deepseek_r1");
  EXPECT_EQ(c.dyn_tool_call_parser, "deepseek_v3");
  EXPECT_TRUE(c.engine.disable_radix_cache);
  EXPECT_EQ(c.engine_kind, "mock");
  EXPECT_DOUBLE_EQ(c.mock.decode_ms, 2.5);
  EXPECT_EQ(c.served_model_name, "r1");
}

TEST(WorkerConfig, AdvertiseHost) {
  WorkerConfig a = parse({"--host", "127.0.0.1"});
  finalize_worker_config(a, {});
  EXPECT_EQ(a.advertise_host, "127.0.0.1");
  WorkerConfig b = parse({"--host", "0.0.0.0", "--advertise-host", "node7"});
  finalize_worker_config(b, {});
  EXPECT_EQ(b.advertise_host, "node7");
}

TEST(WorkerConfig, UnknownFlagIsNamed) {
  WorkerConfig c;
  try {
    testing::parse_args({"--model-path", "/m", "--no-such-flag", "3"}, c, add_worker_flags);
    FAIL() << "unknown flag accepted";
  } catch (const CLI::ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("--no-such-flag"), std::string::npos) << e.what();
  }
}

TEST(WorkerConfig, BadTypeIsNamed) {
  WorkerConfig c;
  try {
    testing::parse_args({"--tp-size", "eight"}, c, add_worker_flags);
    FAIL() << "non-integer accepted";
  } catch (const CLI::ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("--tp-size"), std::string::npos) << e.what();
  }
}

TEST(WorkerConfig, ModelPathRequired) {
  WorkerConfig c = parse({}, /*with_model=*/false);
  auto err = error_of([&] { finalize_worker_config(c, {}); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(err->what()).find("--model-path"), std::string::npos);
}

// Each bad value fails with kInvalidArgument and a message that starts with its flag.
TEST(WorkerConfig, ValidationNamesTheFlag) {
  const std::vector<std::vector<std::string>> cases = {
      {"--chunked-prefill-size", "0"},
      {"--max-running-requests", "0"},
      {"--max-total-tokens", "-5"},
      {"--context-length", "-1"},
      {"--page-size", "0"},
      {"--mem-fraction-static", "1.5"},
      {"--decode-log-interval", "0"},
      {"--schedule-policy", "lpm"},
      {"--schedule-policy", "shortest"},
      {"--watchdog-timeout", "0"},
      {"--log-level", "verbose"},
      {"--engine", "fake"},
      {"--device", "tpu"},
      {"--request-plane-port", "70000"},
      {"--discovery", "http://127.0.0.1:1"},
      {"--discovery", "127.0.0.1"},
      {"--discovery", "embedded://127.0.0.1:0"},
      {"--heartbeat-interval-ms", "0"},
      {"--dyn-reasoning-parser", "qwen3"},
      {"--dyn-tool-call-parser", "hermes"},
      {"--mock-decode-ms", "-1"},
      {"--mock-prefill-tokens-per-s", "0"},
      {"--mock-vocab-size", "0"},
      {"--disaggregation-mode", "both"},
      {"--disaggregation-bootstrap-port", "70000"},
      {"--disaggregation-transfer-backend", "rdma"},
      {"--tp-size", "0"},
      {"--dp-size", "0"},
      {"--ep-size", "0"},
      {"--nnodes", "0"},
      {"--node-rank", "1"},
      {"--dist-init-addr", "headnode"},
      {"--dist-init-addr", "headnode:99999"},
      {"--moe-dense-tp-size", "2"},
      {"--load-balance-method", "best"},
      {"--moe-a2a-backend", "pplx"},
      {"--deepep-mode", "fast"},
      {"--ep-num-redundant-experts", "-1"},
      {"--ep-dispatch-algorithm", "random"},
      {"--eplb-algorithm", "greedy"},
      {"--init-expert-location", ""},
      {"--cuda-graph-max-bs", "0"},
      {"--attention-backend", "magic"},
  };
  for (const auto& args : cases) {
    auto err = finalize_error(args);
    ASSERT_TRUE(err) << args[0] << " " << args[1] << " accepted";
    EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument) << err->what();
    const std::string what = err->what();
    // --schedule-policy lpm is a valid SGLang choice the engine rejects; its message still names
    // the flag.
    EXPECT_NE(what.find(args[0]), std::string::npos) << what;
  }
}

TEST(WorkerConfig, ExactMessages) {
  auto err = finalize_error({"--deepep-mode", "fast"});
  ASSERT_TRUE(err);
  EXPECT_EQ(std::string(err->what())
                .rfind("--deepep-mode must be one of normal, low_latency, auto (got 'fast')", 0),
            0u)
      << err->what();
  err = finalize_error({"--node-rank", "2", "--nnodes", "2"});
  ASSERT_TRUE(err);
  EXPECT_EQ(std::string(err->what()).rfind("--node-rank must be in [0, --nnodes 2) (got 2)", 0), 0u)
      << err->what();
}

TEST(WorkerConfig, ValidationPrecedesSupportPolicy) {
  // A bad value is reported even when an unsupported feature is asked for too.
  auto err = finalize_error({"--tp-size", "8", "--deepep-mode", "fast"});
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument) << err->what();
  err = finalize_error({"--enable-dp-attention", "--tp-size", "8", "--dp-size", "3"});
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument) << err->what();
}

// Each later-issue feature alone fails with kUnimplemented and exactly this message prefix.
// A GPU KV pool goes through the tcp agent's host staging (disagg/kv_agent.h): accepted.
TEST(WorkerConfig, DisaggregationOnTheCudaBackendIsAccepted) {
  for (const char* mode : {"prefill", "decode"}) {
    auto err = finalize_error({"--device", "cuda", "--disaggregation-mode", mode});
    EXPECT_FALSE(err) << mode << ": " << (err ? err->what() : "");
  }
}

TEST(WorkerConfig, NotSupportedYet) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--tp-size", "2"},
       "not supported yet: --tp-size 2 without --enable-dp-attention --dp-size 2 (attention "
       "tensor parallelism) (wide expert parallelism issue)"},
      {{"--moe-a2a-backend", "mooncake"},
       "not supported yet: --moe-a2a-backend mooncake (wide expert parallelism issue)"},
      {{"--ep-dispatch-algorithm", "fake"},
       "not supported yet: --ep-dispatch-algorithm fake (wide expert parallelism issue)"},
      {{"--tp-size", "2", "--dp-size", "2", "--enable-dp-attention", "--disaggregation-mode",
        "decode"},
       "not supported yet: --disaggregation-mode with --tp-size > 1: decode (prefill/decode "
       "disaggregation of a wide-EP worker is not built yet; either works alone)"},
  };
  for (const auto& [args, expected] : cases) {
    auto err = finalize_error(args);
    ASSERT_TRUE(err) << expected;
    EXPECT_EQ(err->code(), ErrorCode::kUnimplemented) << err->what();
    EXPECT_EQ(std::string(err->what()).rfind(expected, 0), 0u)
        << "got: " << err->what() << "\nexpected: " << expected;
  }
}

// Wide EP (issue 7): N ranks with DP attention, redundant experts, EPLB, DeepEP modes.
TEST(WorkerConfig, WideEpAccepted) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--tp-size", "4", "--dp-size", "4", "--enable-dp-attention", "--moe-a2a-backend",
            "deepep", "--deepep-mode", "low_latency", "--ep-num-redundant-experts", "4",
            "--enable-eplb", "--eplb-rebalance-num-iterations", "10", "--ep-size", "4"},
           {"--tp-size", "8", "--dp-size", "8", "--enable-dp-attention", "--nnodes", "2",
            "--node-rank", "1", "--dist-init-addr", "127.0.0.1:5757", "--enable-dp-lm-head"}}) {
    auto err = finalize_error(args);
    EXPECT_FALSE(err) << err->what();
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--dp-size", "4"},
           {"--enable-dp-attention"},
           {"--tp-size", "4", "--dp-size", "4", "--enable-dp-attention", "--ep-size", "2"},
           {"--tp-size", "4", "--dp-size", "4", "--enable-dp-attention", "--nnodes", "2"},
           {"--eplb-rebalance-num-iterations", "0"}}) {
    auto err = finalize_error(args);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument) << err->what();
  }
}

TEST(WorkerConfig, AcceptedWithoutEffect) {
  // Flags that only matter under a later feature are validated and accepted alone.
  WorkerConfig c = parse({"--deepep-mode",
                          "low_latency",
                          "--ep-dispatch-algorithm",
                          "dynamic",
                          "--eplb-algorithm",
                          "deepseek_hierarchical",
                          "--disaggregation-bootstrap-port",
                          "30001",
                          "--disaggregation-transfer-backend",
                          "nixl",
                          "--prefill-round-robin-balance",
                          "--dist-init-addr",
                          "[fe80::1]:29500",
                          "--cuda-graph-max-bs",
                          "256",
                          "--disable-cuda-graph",
                          "--mem-fraction-static",
                          "0.82",
                          "--attention-backend",
                          "trtllm_mla",
                          "--load-balance-method",
                          "round_robin",
                          "--moe-dense-tp-size",
                          "1",
                          "--trust-remote-code",
                          "--disable-shared-experts-fusion",
                          "--skip-tokenizer-init",
                          "--nnodes",
                          "1",
                          "--node-rank",
                          "0"});
  finalize_worker_config(c, {});
  EXPECT_EQ(c.moe.deepep_mode, "low_latency");
  EXPECT_EQ(c.cuda.attention_backend, "trtllm_mla");
}

TEST(WorkerConfig, AttentionBackendNote) {
  EXPECT_EQ(attention_backend_note("", "cpu"), "");
  const std::string cpu = attention_backend_note("cutlass_mla", "cpu");
  EXPECT_NE(cpu.find("does not apply on the CPU backend"), std::string::npos) << cpu;
  EXPECT_NE(cpu.find("CPU MLA attention runs"), std::string::npos) << cpu;
  EXPECT_NE(cpu.find("Blackwell"), std::string::npos) << cpu;
  EXPECT_EQ(attention_backend_note("flashinfer", "cpu").find("Blackwell"), std::string::npos);
  EXPECT_NE(attention_backend_note("trtllm_mla", "cuda").find("Hopper"), std::string::npos);
  EXPECT_EQ(attention_backend_note("fa3", "cuda"), "");
  EXPECT_TRUE(is_blackwell_only_attention_backend("cutlass_mla"));
  EXPECT_TRUE(is_blackwell_only_attention_backend("trtllm_mla"));
  EXPECT_FALSE(is_blackwell_only_attention_backend("flashmla"));
}

TEST(WorkerEnv, ParsedIntegersAndBools) {
  WorkerConfig c = parse({});
  finalize_worker_config(c, {{"SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE", "7"},
                             {"SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT", "100"},
                             {"WIDESERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT", "42"},
                             {"WIDESERVE_DISAGGREGATION_WAITING_TIMEOUT", "9"},
                             {"SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK", "768"},
                             {"SGLANG_HACK_SEQ_BOOTSTRAP_ROOM", "True"}});
  EXPECT_EQ(c.env.heartbeat_max_failure, 7);
  EXPECT_EQ(c.env.bootstrap_timeout_s, 42);  // WIDESERVE_ wins
  EXPECT_EQ(c.env.waiting_timeout_s, 9);
  EXPECT_EQ(c.env.deepep_num_max_dispatch_tokens_per_rank, 768);
  EXPECT_TRUE(c.env.hack_seq_bootstrap_room);
  EXPECT_TRUE(c.warnings.empty());
}

TEST(WorkerEnv, MalformedValuesNameTheVariable) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE", "many"},
      {"SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT", "10s"},
      {"SGLANG_DISAGGREGATION_WAITING_TIMEOUT", ""},
      {"WIDESERVE_DISAGGREGATION_WAITING_TIMEOUT", "0"},
      {"SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK", "-768"},
      {"SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK", "99999999999999999999"},
      {"SGLANG_HACK_SEQ_BOOTSTRAP_ROOM", "maybe"},
  };
  for (const auto& [name, value] : cases) {
    // Environment errors come first, even before an unsupported flag.
    auto err = finalize_error({"--tp-size", "8"}, {{name, value}});
    ASSERT_TRUE(err) << name << "=" << value << " accepted";
    EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument) << err->what();
    EXPECT_NE(std::string(err->what()).find(name), std::string::npos) << err->what();
  }
}

TEST(WorkerEnv, UnknownVariablesWarn) {
  WorkerConfig c = parse({});
  finalize_worker_config(c, {{"SGLANG_ENABLE_TORCH_COMPILE", "1"},
                             {"SGL_FOO", "1"},
                             {"WIDESERVE_BOGUS", "x"},
                             {"MC_SOMETHING", "1"},
                             {"HOME", "/root"},
                             {"WIDESERVE_NUM_THREADS", "4"},
                             {"SGLANG_DG_CACHE_DIR", "/configs/dgcache"}});
  ASSERT_EQ(c.warnings.size(), 3u);
  std::string all;
  for (const auto& w : c.warnings) all += w + "\n";
  for (const char* v : {"SGLANG_ENABLE_TORCH_COMPILE", "SGL_FOO", "WIDESERVE_BOGUS"})
    EXPECT_NE(all.find(v), std::string::npos) << all;
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("SGLANG_DG_CACHE_DIR=/configs/dgcache (DeepGEMM"), std::string::npos)
      << c.notes[0];
}

TEST(WorkerEnv, DiscoveryFromEnvUnlessFlagGiven) {
  WorkerConfig a = parse({});
  finalize_worker_config(a, {{"WIDESERVE_DISCOVERY", "embedded://10.0.0.9:4000"}});
  EXPECT_EQ(a.discovery_address.host, "10.0.0.9");
  EXPECT_EQ(a.discovery_address.port, 4000);
  WorkerConfig b = parse({"--discovery", "embedded://127.0.0.1:5000"});
  finalize_worker_config(b, {{"WIDESERVE_DISCOVERY", "embedded://10.0.0.9:4000"}});
  EXPECT_EQ(b.discovery_address.port, 5000);
  auto err = finalize_error({}, {{"WIDESERVE_DISCOVERY", "nonsense"}});
  ASSERT_TRUE(err);
  EXPECT_NE(std::string(err->what()).find("--discovery"), std::string::npos) << err->what();
}

TEST(WorkerEnv, NcclPassedThrough) {
  WorkerConfig c = parse({});
  finalize_worker_config(c, {{"NCCL_CUMEM_ENABLE", "1"}, {"NCCL_DEBUG", "INFO"}});
  EXPECT_EQ(c.nccl_env.size(), 2u);
  EXPECT_EQ(c.nccl_env.at("NCCL_DEBUG"), "INFO");
  EXPECT_TRUE(c.notes.empty());
  EXPECT_TRUE(c.warnings.empty());
}

}  // namespace
}  // namespace wideserve::config
