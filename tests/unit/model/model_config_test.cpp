#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "model/model_config.h"
#include "model/rope.h"

namespace wideserve::model {
namespace {
using nlohmann::json;

json fixture_config(const std::string& name) {
  return json::parse(std::ifstream(std::string(WS_TEST_FIXTURES) + "/" + name + "/config.json"));
}

TEST(ModelConfig, ParsesTransformers5Spelling) {
  auto c = parse_model_config(fixture_config("tiny-bf16-a"), "a");
  EXPECT_EQ(c.architecture, "DeepseekV3ForCausalLM");
  EXPECT_EQ(c.q_lora_rank, 96);
  EXPECT_TRUE(c.rope.yarn);
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 512);
  EXPECT_TRUE(c.rope.interleave);
  EXPECT_EQ(c.kv_cache_dim(), 64 + 16);
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_TRUE(c.is_moe_layer(1));
}

TEST(ModelConfig, BothRopeSpellingsGiveTheSameRope) {
  json a = fixture_config("tiny-bf16-a");
  json b = a;
  json rp = b["rope_parameters"];
  b.erase("rope_parameters");
  b.erase("rope_interleave");  // absent means DeepSeek's interleaved default
  b["rope_theta"] = rp["rope_theta"];
  rp.erase("rope_theta");
  rp.erase("rope_type");
  b["rope_scaling"] = rp;
  auto ca = parse_model_config(a, "a"), cb = parse_model_config(b, "b");
  Rope ra(ca), rb(cb);
  EXPECT_EQ(ra.inv_freq(), rb.inv_freq());
  EXPECT_EQ(cb.rope.interleave, true);
  EXPECT_DOUBLE_EQ(ca.attention_scale(), cb.attention_scale());
}

TEST(ModelConfig, YarnFrequenciesMatchTransformers) {
  // transformers' _compute_yarn_parameters for tiny-bf16-a (dim 16, factor 4, original 512).
  const float want[] = {1.0f,           0.25693506f,     0.0625f,         0.0138349654f,
                        0.00249999994f, 0.000790569466f, 0.000250000012f, 7.90569466e-05f};
  Rope r(parse_model_config(fixture_config("tiny-bf16-a"), "a"));
  ASSERT_EQ(r.inv_freq().size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(r.inv_freq()[i], want[i], 1e-6 * want[i]) << i;
  EXPECT_FLOAT_EQ(r.attention_factor(), 1.0f);
}

TEST(ModelConfig, AttentionScaleIncludesYarnMscale) {
  auto c = parse_model_config(fixture_config("tiny-bf16-a"), "a");
  double m = 0.1 * std::log(4.0) + 1.0;
  EXPECT_NEAR(c.attention_scale(), m * m / std::sqrt(48.0), 1e-12);
}

TEST(ModelConfig, V2DefaultsAndSoftmax) {
  auto c = parse_model_config(fixture_config("tiny-v2-softmax"), "v2");
  EXPECT_EQ(c.architecture, "DeepseekV2ForCausalLM");
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_EQ(c.topk_method, TopkMethod::kGroupLimitedGreedy);
  EXPECT_EQ(c.q_lora_rank, 0);
}

TEST(ModelConfig, Fp8QuantizationConfig) {
  auto c = parse_model_config(fixture_config("tiny-fp8-dslayout"), "fp8");
  EXPECT_EQ(c.fp8_block_rows, 128);
  EXPECT_EQ(c.fp8_block_cols, 128);
}

TEST(ModelConfig, RejectsUnknownArchitectureAndBadValues) {
  json a = fixture_config("tiny-bf16-a");
  a["architectures"] = {"LlamaForCausalLM"};
  EXPECT_THROW(parse_model_config(a, "x"), Error);
  json b = fixture_config("tiny-bf16-a");
  b["n_group"] = 3;  // 16 experts not divisible by 3
  EXPECT_THROW(parse_model_config(b, "x"), Error);
  json c = fixture_config("tiny-bf16-a");
  c["hidden_size"] = "256";
  try {
    parse_model_config(c, "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'hidden_size' must be an integer"), std::string::npos);
  }
}

}  // namespace
}  // namespace wideserve::model
