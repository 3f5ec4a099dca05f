// DeepSeek V2/V3/R1 architecture hyper-parameters, parsed from a HF config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/router.h"

namespace wideserve::model {

using moe::ScoringFunc;
using moe::TopkMethod;

// Rotary embedding settings (default or YaRN).
struct RopeConfig {
  bool yarn = false;
  double theta = 10000.0;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 0.0;            // 0 = absent
  double mscale_all_dim = 0.0;    // 0 = absent
  double attention_factor = 0.0;  // 0 = derive from factor/mscale as HF does
  bool truncate = true;
  bool interleave = true;  // DeepSeek's pairwise layout (absent in config = true)
};

// Everything the forward pass needs to know about the architecture.
struct ModelConfig {
  std::string architecture;  // DeepseekV3ForCausalLM or DeepseekV2ForCausalLM
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t q_lora_rank = 0;  // 0 = no q compression (q_proj)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;  // 0 = dense model
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  ScoringFunc scoring_func = ScoringFunc::kSigmoid;
  TopkMethod topk_method = TopkMethod::kNoauxTc;
  double rms_norm_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  bool attention_bias = false;
  bool tie_word_embeddings = false;
  int64_t num_nextn_predict_layers = 0;
  RopeConfig rope;
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;
  // FP8 block quantization (quantization_config.weight_block_size); 0 = not quantized.
  int64_t fp8_block_rows = 0;
  int64_t fp8_block_cols = 0;

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // Latent KV cache row per token and layer: kv_lora_rank + qk_rope_head_dim.
  int64_t kv_cache_dim() const { return kv_lora_rank + qk_rope_head_dim; }
  // Whether decoder layer `layer` uses routed experts.
  bool is_moe_layer(int64_t layer) const;
  // Softmax scale of attention, including YaRN's mscale correction.
  double attention_scale() const;
};

// Parses config.json text; errors name `source` and the offending key.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source);
// Reads DIR/config.json.
ModelConfig load_model_config(const std::string& model_dir);

}  // namespace wideserve::model
