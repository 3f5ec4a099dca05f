// Float32 weights of a DeepSeek V2/V3 model, as the CPU backend computes with them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/model_config.h"

namespace wideserve::model {

// y = x W^T (+ b): W is [out, in] row-major.
struct LinearWeight {
  std::vector<float> w;
  std::vector<float> bias;  // empty = no bias
  int64_t out = 0, in = 0;
};

// Multi-head latent attention projections and norms.
struct AttentionWeights {
  LinearWeight q_a, q_b;  // with q_lora_rank
  std::vector<float> q_a_norm;
  LinearWeight q;     // without q_lora_rank
  LinearWeight kv_a;  // -> kv_lora_rank + qk_rope_head_dim
  std::vector<float> kv_a_norm;
  LinearWeight kv_b;  // kv_lora_rank -> heads * (qk_nope + v)
  LinearWeight o;
};

// SwiGLU MLP with gate and up fused: gate_up [2I, H] (gate rows first), down [H, I].
struct MlpWeights {
  LinearWeight gate_up, down;
};

// Routed experts + router + shared experts of one MoE layer.
struct MoeWeights {
  std::vector<float> router;       // [E, H]
  std::vector<float> router_bias;  // e_score_correction_bias [E], empty if absent
  std::vector<float> gate_up;      // [E, 2I, H]
  std::vector<float> down;         // [E, H, I]
  bool has_shared = false;
  MlpWeights shared;  // intermediate = I * n_shared_experts
};

// One decoder layer.
struct LayerWeights {
  std::vector<float> input_norm, post_attention_norm;
  AttentionWeights attn;
  bool is_moe = false;
  MlpWeights mlp;  // dense layers
  MoeWeights moe;  // MoE layers
};

// The whole model.
struct ModelWeights {
  std::vector<float> embed;  // [V, H]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  std::vector<float> lm_head;  // [V, H]
};

// Loads every tensor the config calls for; throws naming the file and tensor on a missing,
// extra, mis-shaped or undecodable tensor. MTP layers (index >= num_hidden_layers) are skipped.
ModelWeights load_weights(Checkpoint& ckpt, const ModelConfig& cfg);

}  // namespace wideserve::model
