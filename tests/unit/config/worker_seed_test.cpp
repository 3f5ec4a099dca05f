// The seed's two worker command lines against WorkerConfig: they parse, fail on the first
// unsupported feature in the documented order, and pass once those are trivial.
#include <gtest/gtest.h>

#include "config/worker_config.h"
#include "config_test_util.h"
#include "seed_commands.h"

namespace wideserve::config {
namespace {

using testing::error_of;
using testing::SeedCommand;

SeedCommand seed(const char* text) {
  std::string t = text;
  for (std::string var : {"${HEAD_PREFILL_NODE_IP}", "${HEAD_DECODE_NODE_IP}"})
    if (size_t at = t.find(var); at != std::string::npos) t.replace(at, var.size(), "10.0.0.1");
  return testing::split_seed_command(t, "dynamo.sglang");
}

WorkerConfig parse(const std::vector<std::string>& args) {
  WorkerConfig cfg;
  testing::parse_args(args, cfg, add_worker_flags);
  return cfg;
}

// Each step turns one unsupported feature into its trivial value (appended flags win, as with
// SGLang's argparse); the expected message is the error before that step.
struct Step {
  std::vector<std::string> trivial;
  std::string expected;
};

std::vector<Step> steps(const std::string& mode) {
  return {
      // Wide EP runs on its own (aggregated); with PD it is not supported yet. One rank on one
      // node then starts.
      {{"--tp-size", "1", "--dp-size", "1", "--enable-dp-attention=false", "--nnodes", "1"},
       "not supported yet: --disaggregation-mode with --tp-size > 1: " + mode +
           " (prefill/decode disaggregation of a wide-EP worker is not built yet; either works "
           "alone)"},
  };
}

// Walks the steps: before each, finalize fails with exactly that step's message; after all, it
// passes. Returns the final config.
WorkerConfig walk(const SeedCommand& cmd, const std::string& mode) {
  std::vector<std::string> args = cmd.args;
  for (const Step& s : steps(mode)) {
    WorkerConfig cfg = parse(args);
    auto err = error_of([&] { finalize_worker_config(cfg, cmd.env); });
    EXPECT_TRUE(err.has_value()) << "expected: " << s.expected;
    if (err) {
      EXPECT_EQ(err->code(), ErrorCode::kUnimplemented) << err->what();
      EXPECT_EQ(std::string(err->what()).rfind(s.expected, 0), 0u)
          << "got: " << err->what() << "\nexpected: " << s.expected;
    }
    args.insert(args.end(), s.trivial.begin(), s.trivial.end());
  }
  WorkerConfig cfg = parse(args);
  finalize_worker_config(cfg, cmd.env);
  return cfg;
}

TEST(WorkerSeed, PrefillFailsOnFeaturesInOrderThenPasses) {
  const SeedCommand cmd = seed(testing::kSeedPrefillCommand);
  const WorkerConfig c = walk(cmd, "prefill");

  EXPECT_EQ(c.served_model_name, "deepseek-ai/DeepSeek-R1");
  EXPECT_EQ(c.model_path, "/model/");
  EXPECT_TRUE(c.skip_tokenizer_init);
  EXPECT_TRUE(c.trust_remote_code);
  EXPECT_EQ(c.parallel.dist_init_addr, "10.0.0.1:29500");
  EXPECT_EQ(c.disagg.bootstrap_port, 30001);
  EXPECT_EQ(c.disagg.transfer_backend, "nixl");
  EXPECT_FALSE(c.disagg.prefill_round_robin_balance);
  EXPECT_EQ(c.parallel.node_rank, 0);
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.advertise_host, "127.0.0.1");
  EXPECT_EQ(c.engine.decode_log_interval, 1);
  EXPECT_EQ(c.engine.max_running_requests, 6144);
  EXPECT_EQ(c.engine.context_length, 2716);
  EXPECT_TRUE(c.engine.disable_radix_cache);
  EXPECT_EQ(c.parallel.load_balance_method, "round_robin");
  EXPECT_EQ(c.moe.deepep_mode, "normal");
  EXPECT_EQ(c.parallel.moe_dense_tp_size, 1);
  EXPECT_TRUE(c.moe.disable_shared_experts_fusion);
  EXPECT_EQ(c.moe.ep_dispatch_algorithm, "static");
  EXPECT_EQ(c.moe.eplb_algorithm, "deepseek");
  EXPECT_EQ(c.cuda.attention_backend, "cutlass_mla");
  EXPECT_DOUBLE_EQ(c.watchdog_timeout_s, 1000000.0);
  EXPECT_TRUE(c.cuda.disable_cuda_graph);
  EXPECT_EQ(c.engine.chunked_prefill_size, 16384);
  EXPECT_EQ(c.engine.max_total_tokens, 32768);
  EXPECT_DOUBLE_EQ(c.engine.mem_fraction_static, 0.82);
  EXPECT_EQ(c.log_level, "debug");

  EXPECT_EQ(c.env.heartbeat_max_failure, 100000);
  EXPECT_EQ(c.env.bootstrap_timeout_s, 100000);
  EXPECT_EQ(c.env.waiting_timeout_s, 100000);
  EXPECT_EQ(c.env.deepep_num_max_dispatch_tokens_per_rank, 128);  // not set: SGLang's default
  EXPECT_FALSE(c.env.hack_seq_bootstrap_room);
  EXPECT_EQ(c.nccl_env.at("NCCL_CUMEM_ENABLE"), "1");
  EXPECT_EQ(c.nccl_env.at("NCCL_MNNVL_ENABLE"), "1");
  ASSERT_EQ(c.notes.size(), 3u);  // MC_FORCE_MNNVL, NCCL_MNNVL_ENABLE, MC_TE_METRIC
  std::string notes;
  for (const auto& n : c.notes) notes += n + "\n";
  for (const char* v : {"MC_FORCE_MNNVL=1", "NCCL_MNNVL_ENABLE=1", "MC_TE_METRIC=true"})
    EXPECT_NE(notes.find(v), std::string::npos) << notes;
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  EXPECT_NE(attention_backend_note(c.cuda.attention_backend, c.device).find("Blackwell"),
            std::string::npos);
}

TEST(WorkerSeed, DecodeFailsOnFeaturesInOrderThenPasses) {
  const SeedCommand cmd = seed(testing::kSeedDecodeCommand);
  const WorkerConfig c = walk(cmd, "decode");

  EXPECT_EQ(c.engine.max_running_requests, 36864);
  EXPECT_EQ(c.engine.chunked_prefill_size, 36864);
  EXPECT_EQ(c.engine.max_total_tokens, 0);
  EXPECT_TRUE(c.disagg.prefill_round_robin_balance);
  EXPECT_EQ(c.moe.deepep_mode, "low_latency");
  EXPECT_EQ(c.cuda.cuda_graph_max_bs, 256);
  EXPECT_FALSE(c.cuda.disable_cuda_graph);
  EXPECT_EQ(c.env.deepep_num_max_dispatch_tokens_per_rank, 768);
  EXPECT_TRUE(c.env.hack_seq_bootstrap_room);
  EXPECT_EQ(c.env.waiting_timeout_s, 100000);
  std::string notes;
  for (const auto& n : c.notes) notes += n + "\n";
  for (const char* v : {"MC_FORCE_MNNVL=1", "NCCL_MNNVL_ENABLE=1", "MC_TE_METRIC=true",
                        "SGLANG_MOONCAKE_CUSTOM_MEM_POOL=True"})
    EXPECT_NE(notes.find(v), std::string::npos) << notes;
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
}

TEST(WorkerSeed, SeedEnvironmentIsAllKnown) {
  // Every variable the seed sets is either read, noted or an accepted no-op: no warnings.
  for (const char* text : {testing::kSeedPrefillCommand, testing::kSeedDecodeCommand}) {
    SeedCommand cmd = seed(text);
    WorkerConfig c = parse({"--model-path", "/m"});
    finalize_worker_config(c, cmd.env);
    EXPECT_TRUE(c.warnings.empty());
  }
}

}  // namespace
}  // namespace wideserve::config
