#include "model/weights.h"

#include <regex>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::model {
namespace {

LinearWeight load_linear(Checkpoint& ck, const std::string& name, int64_t out, int64_t in,
                         bool optional_bias) {
  LinearWeight l;
  l.out = out;
  l.in = in;
  l.w = ck.load_f32(name + ".weight", {out, in});
  if (optional_bias && ck.has(name + ".bias")) l.bias = ck.load_f32(name + ".bias", {out});
  return l;
}

// gate and up [I, H] each -> gate_up [2I, H].
LinearWeight load_gate_up(Checkpoint& ck, const std::string& prefix, int64_t inter,
                          int64_t hidden) {
  LinearWeight l;
  l.out = 2 * inter;
  l.in = hidden;
  l.w.resize(2 * inter * hidden);
  ck.load_f32(prefix + ".gate_proj.weight", {inter, hidden}, l.w.data());
  ck.load_f32(prefix + ".up_proj.weight", {inter, hidden}, l.w.data() + inter * hidden);
  return l;
}

MlpWeights load_mlp(Checkpoint& ck, const std::string& prefix, int64_t inter, int64_t hidden) {
  MlpWeights m;
  m.gate_up = load_gate_up(ck, prefix, inter, hidden);
  m.down = load_linear(ck, prefix + ".down_proj", hidden, inter, false);
  return m;
}

void load_experts(Checkpoint& ck, const std::string& prefix, const ModelConfig& c, MoeWeights* m) {
  const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size, H = c.hidden_size;
  m->gate_up.resize(E * 2 * I * H);
  m->down.resize(E * H * I);
  if (ck.has(prefix + ".gate_up_proj")) {
    // transformers 5 layout: fused 3-D tensors.
    ck.load_f32(prefix + ".gate_up_proj", {E, 2 * I, H}, m->gate_up.data());
    ck.load_f32(prefix + ".down_proj", {E, H, I}, m->down.data());
    return;
  }
  for (int64_t e = 0; e < E; ++e) {
    std::string p = prefix + "." + std::to_string(e);
    ck.load_f32(p + ".gate_proj.weight", {I, H}, m->gate_up.data() + e * 2 * I * H);
    ck.load_f32(p + ".up_proj.weight", {I, H}, m->gate_up.data() + e * 2 * I * H + I * H);
    ck.load_f32(p + ".down_proj.weight", {H, I}, m->down.data() + e * H * I);
  }
}

AttentionWeights load_attention(Checkpoint& ck, const std::string& p, const ModelConfig& c) {
  AttentionWeights a;
  const int64_t H = c.hidden_size, nh = c.num_attention_heads;
  if (c.q_lora_rank > 0) {
    a.q_a = load_linear(ck, p + ".q_a_proj", c.q_lora_rank, H, c.attention_bias);
    a.q_a_norm = ck.load_f32(p + ".q_a_layernorm.weight", {c.q_lora_rank});
    a.q_b = load_linear(ck, p + ".q_b_proj", nh * c.qk_head_dim(), c.q_lora_rank, false);
  } else {
    a.q = load_linear(ck, p + ".q_proj", nh * c.qk_head_dim(), H, c.attention_bias);
  }
  a.kv_a = load_linear(ck, p + ".kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_head_dim, H,
                       c.attention_bias);
  a.kv_a_norm = ck.load_f32(p + ".kv_a_layernorm.weight", {c.kv_lora_rank});
  a.kv_b = load_linear(ck, p + ".kv_b_proj", nh * (c.qk_nope_head_dim + c.v_head_dim),
                       c.kv_lora_rank, false);
  a.o = load_linear(ck, p + ".o_proj", H, nh * c.v_head_dim, c.attention_bias);
  return a;
}

// Tensors we knowingly do not use: MTP layers past the decoder stack, rotary caches.
bool ignorable(const std::string& name, const ModelConfig& c) {
  static const std::regex layer_re(R"(^model\.layers\.(\d+)\.)");
  std::smatch m;
  if (std::regex_search(name, m, layer_re)) {
    if (std::stoll(m[1].str()) >= c.num_hidden_layers) return true;
  }
  return name.find("rotary_emb.inv_freq") != std::string::npos;
}

}  // namespace

ModelWeights load_weights(Checkpoint& ck, const ModelConfig& c) {
  ModelWeights w;
  const int64_t H = c.hidden_size, V = c.vocab_size;
  w.embed = ck.load_f32("model.embed_tokens.weight", {V, H});
  w.layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    LayerWeights& L = w.layers[l];
    L.input_norm = ck.load_f32(p + ".input_layernorm.weight", {H});
    L.post_attention_norm = ck.load_f32(p + ".post_attention_layernorm.weight", {H});
    L.attn = load_attention(ck, p + ".self_attn", c);
    L.is_moe = c.is_moe_layer(l);
    if (!L.is_moe) {
      L.mlp = load_mlp(ck, p + ".mlp", c.intermediate_size, H);
      continue;
    }
    L.moe.router = ck.load_f32(p + ".mlp.gate.weight", {c.n_routed_experts, H});
    if (ck.has(p + ".mlp.gate.e_score_correction_bias"))
      L.moe.router_bias =
          ck.load_f32(p + ".mlp.gate.e_score_correction_bias", {c.n_routed_experts});
    else
      WS_CHECK_CODE(kNotFound, c.topk_method != TopkMethod::kNoauxTc,
                    "checkpoint {}: missing tensor '{}' (topk_method noaux_tc needs it)", ck.dir(),
                    p + ".mlp.gate.e_score_correction_bias");
    load_experts(ck, p + ".mlp.experts", c, &L.moe);
    if (c.n_shared_experts > 0) {
      L.moe.has_shared = true;
      L.moe.shared =
          load_mlp(ck, p + ".mlp.shared_experts", c.moe_intermediate_size * c.n_shared_experts, H);
    }
  }
  w.final_norm = ck.load_f32("model.norm.weight", {H});
  if (ck.has("lm_head.weight") || !c.tie_word_embeddings) {
    w.lm_head = ck.load_f32("lm_head.weight", {V, H});
  } else {
    w.lm_head = w.embed;
  }
  for (const auto& name : ck.unused_tensors()) {
    if (ignorable(name, c)) continue;
    WS_THROW(kDataLoss, "{}: unexpected tensor '{}' (not part of a {} with this config)",
             ck.view(name).file, name, c.architecture);
  }
  return w;
}

}  // namespace wideserve::model
