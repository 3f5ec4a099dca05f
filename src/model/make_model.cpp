#include "model/make_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/data_dir.h"
#include "common/float_types.h"
#include "common/logging.h"
#include "common/thread_pool.h"
#include "model/safetensors.h"

namespace wideserve::model {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Fills out[0, n) with standard normals, deterministic in (key, index) whatever the thread count.
void fill_normal(uint64_t key, float* out, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  parallel_for((n + kChunk - 1) / kChunk, 1, [&](size_t cb, size_t ce) {
    for (size_t c = cb; c < ce; ++c) {
      uint64_t s = key ^ (c * 0xd1b54a32d192ed03ull);
      int64_t b = c * kChunk, e = std::min(n, b + kChunk);
      for (int64_t i = b; i < e; i += 2) {
        double u1 = ((splitmix(s) >> 11) + 1) * 0x1.0p-53, u2 = (splitmix(s) >> 11) * 0x1.0p-53;
        double r = std::sqrt(-2.0 * std::log(u1));
        out[i] = static_cast<float>(r * std::cos(2 * M_PI * u2));
        if (i + 1 < e) out[i + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
      }
    }
  });
}

struct Dims {
  int64_t vocab, hidden, inter, moe_inter, layers, dense, experts, shared, topk, n_group,
      topk_group;
  int64_t q_lora, kv_lora, nope, rope, v, heads, max_pos;
  double scaling;
  ordered_json rope_yarn;  // factor, original_max_position_embeddings, beta_fast, ...
};

Dims preset_dims(const MakeModelOptions& o) {
  Dims d{};
  ordered_json yarn = {{"factor", 4.0},   {"original_max_position_embeddings", 512},
                       {"beta_fast", 32}, {"beta_slow", 1},
                       {"mscale", 1.0},   {"mscale_all_dim", 1.0}};
  if (o.preset == "tiny") {
    // The reference fixtures' shape with the real DeepSeek-V3 vocabulary, so the tokenizer works.
    d = Dims{129280, 256, 512, 128, 4, 1, 16, 1, 4, 4, 2, 96, 64, 32, 16, 32, 4, 2048, 2.5, yarn};
  } else if (o.preset == "v3") {
    yarn = {{"factor", 40.0},  {"original_max_position_embeddings", 4096},
            {"beta_fast", 32}, {"beta_slow", 1},
            {"mscale", 1.0},   {"mscale_all_dim", 1.0}};
    d = Dims{129280, 7168, 18432, 2048, 61, 3,   256, 1,      8,   8,
             4,      1536, 512,   128,  64, 128, 128, 163840, 2.5, yarn};
  } else if (o.preset == "v2-lite") {
    // DeepSeek-V2-Lite's dimensions (V2 routing: softmax, greedy top-6, no q compression), with
    // the DeepSeek-V3 vocabulary so that the shipped tokenizer's ids are all valid.
    yarn = {{"factor", 40.0},  {"original_max_position_embeddings", 4096},
            {"beta_fast", 32}, {"beta_slow", 1},
            {"mscale", 0.707}, {"mscale_all_dim", 0.707}};
    d = Dims{129280, 2048, 10944, 1408, 27, 1,   64, 2,      6,   1,
             1,      0,    512,   128,  64, 128, 16, 163840, 1.0, yarn};
  } else {
    WS_THROW(kInvalidArgument, "--preset: unknown preset '{}' (tiny, v2-lite, v3)", o.preset);
  }
  if (o.layers > 0) {
    d.layers = o.layers;
    d.dense = std::min(d.dense, d.layers);
  }
  return d;
}

ordered_json make_config(const Dims& d, const MakeModelOptions& o) {
  ordered_json c;
  const bool v2 = o.preset == "v2-lite";
  c["architectures"] = {v2 ? "DeepseekV2ForCausalLM" : "DeepseekV3ForCausalLM"};
  c["model_type"] = v2 ? "deepseek_v2" : "deepseek_v3";
  c["vocab_size"] = d.vocab;
  c["hidden_size"] = d.hidden;
  c["intermediate_size"] = d.inter;
  c["moe_intermediate_size"] = d.moe_inter;
  c["num_hidden_layers"] = d.layers;
  c["num_attention_heads"] = d.heads;
  c["num_key_value_heads"] = d.heads;
  c["n_shared_experts"] = d.shared;
  c["n_routed_experts"] = d.experts;
  c["routed_scaling_factor"] = d.scaling;
  c["kv_lora_rank"] = d.kv_lora;
  if (d.q_lora > 0)
    c["q_lora_rank"] = d.q_lora;
  else
    c["q_lora_rank"] = nullptr;
  c["qk_rope_head_dim"] = d.rope;
  c["v_head_dim"] = d.v;
  c["qk_nope_head_dim"] = d.nope;
  c["topk_method"] = v2 ? "greedy" : "noaux_tc";
  c["scoring_func"] = v2 ? "softmax" : "sigmoid";
  c["n_group"] = d.n_group;
  c["topk_group"] = d.topk_group;
  c["num_experts_per_tok"] = d.topk;
  c["first_k_dense_replace"] = d.dense;
  c["moe_layer_freq"] = 1;
  c["norm_topk_prob"] = !v2;
  c["hidden_act"] = "silu";
  c["max_position_embeddings"] = d.max_pos;
  c["rms_norm_eps"] = 1e-6;
  c["bos_token_id"] = 0;
  c["eos_token_id"] = 1;
  c["tie_word_embeddings"] = false;
  c["attention_bias"] = false;
  c["num_nextn_predict_layers"] = 0;
  c["torch_dtype"] = "bfloat16";
  ordered_json rope = d.rope_yarn;
  if (o.layout == "hf") {
    rope["rope_type"] = "yarn";
    rope["rope_theta"] = 10000.0;
    c["rope_parameters"] = rope;
    c["rope_interleave"] = true;
  } else {
    rope["type"] = "yarn";
    c["rope_scaling"] = rope;
    c["rope_theta"] = 10000.0;
  }
  if (o.fp8)
    c["quantization_config"] = {{"activation_scheme", "dynamic"},
                                {"fmt", "e4m3"},
                                {"quant_method", "fp8"},
                                {"weight_block_size", {128, 128}}};
  return c;
}

// Kinds of generated tensors.
enum class Init { kNorm, kBias, kMatrix };

struct Spec {
  std::string name;
  std::vector<int64_t> shape;  // 1-D or 2-D
  Init init;
  bool quantize;               // FP8 + block scales
  bool fused_experts = false;  // name is a layer prefix: write its routed experts fused (hf layout)
};

// Scale of FP8 block (i, j) of the tensor keyed `key`: sigma * 4 / 448, varied per block so that
// block indexing is exercised.
float fp8_block_scale(uint64_t key, float sigma, int64_t i, int64_t j) {
  uint64_t st = key ^ (0x5bd1e995ull * (1 + i * 65537 + j));
  float jitter = 0.75f + 0.5f * static_cast<float>((splitmix(st) >> 40) & 0xffff) / 65535.0f;
  return sigma * 4.0f / 448.0f * jitter;
}

// Writes the values of a 1-D/2-D tensor named `name` (its own random stream) into dst, as BF16,
// F32 or FP8 codes; the same name gives the same values whatever the layout around it.
void fill_values(const std::string& name, uint64_t seed, Init init, DType dt, int64_t rows,
                 int64_t cols, std::byte* dst) {
  const uint64_t key = hash_name(name, seed);
  const float sigma = init == Init::kMatrix ? 1.0f / std::sqrt(static_cast<float>(cols))
                      : init == Init::kNorm ? 0.1f
                                            : 0.05f;
  const float mean = init == Init::kNorm ? 1.0f : 0.0f;
  const int64_t n = rows * cols;
  std::vector<float> v(n);
  fill_normal(key, v.data(), n);
  if (dt == DType::kF32) {
    auto* o = reinterpret_cast<float*>(dst);
    for (int64_t i = 0; i < n; ++i) o[i] = mean + sigma * v[i];
  } else if (dt == DType::kBF16) {
    auto* o = reinterpret_cast<uint16_t*>(dst);
    parallel_for(n, 1 << 16, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) o[i] = float_to_bf16(mean + sigma * v[i]);
    });
  } else {
    // FP8 codes: 4 sigma reaches the e4m3 maximum.
    auto* o = reinterpret_cast<uint8_t*>(dst);
    parallel_for(n, 1 << 16, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i)
        o[i] = float_to_fp8_e4m3(std::clamp(v[i] * 112.0f, -448.0f, 448.0f));
    });
  }
}

void fill_scales(const std::string& name, uint64_t seed, int64_t rows, int64_t cols, float* dst) {
  const uint64_t key = hash_name(name, seed);
  const float sigma = 1.0f / std::sqrt(static_cast<float>(cols));
  const int64_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
  for (int64_t i = 0; i < br; ++i)
    for (int64_t j = 0; j < bc; ++j) dst[i * bc + j] = fp8_block_scale(key, sigma, i, j);
}

void add_tensors(const Spec& s, uint64_t seed, std::vector<TensorToWrite>* out) {
  const int64_t cols = s.shape.back();
  const int64_t rows = s.shape.size() >= 2 ? s.shape[0] : 1;
  const DType dt = s.quantize ? DType::kF8E4M3 : s.init == Init::kBias ? DType::kF32 : DType::kBF16;
  out->push_back({s.name, dt, s.shape,
                  [=](std::byte* dst) { fill_values(s.name, seed, s.init, dt, rows, cols, dst); }});
  if (s.quantize)
    out->push_back({s.name + "_scale_inv",
                    DType::kF32,
                    {(rows + 127) / 128, (cols + 127) / 128},
                    [=](std::byte* dst) {
                      fill_scales(s.name, seed, rows, cols, reinterpret_cast<float*>(dst));
                    }});
}

// transformers 5's fused expert tensors, filled from the per-expert streams so that both layouts
// of one seed hold the same model.
void add_fused_experts(const std::string& p, const Dims& d, bool fp8, uint64_t seed,
                       std::vector<TensorToWrite>* out) {
  const int64_t E = d.experts, I = d.moe_inter, H = d.hidden;
  WS_CHECK_ARG(!fp8 || I % 128 == 0,
               "--fp8 with --layout hf needs moe_intermediate_size % 128 == 0");
  const DType dt = fp8 ? DType::kF8E4M3 : DType::kBF16;
  const size_t es = dtype_size(dt);
  auto ename = [p](int64_t e, const char* w) {
    return p + ".mlp.experts." + std::to_string(e) + "." + w + ".weight";
  };
  out->push_back({p + ".mlp.experts.gate_up_proj", dt, {E, 2 * I, H}, [=](std::byte* dst) {
                    for (int64_t e = 0; e < E; ++e) {
                      std::byte* base = dst + e * 2 * I * H * es;
                      fill_values(ename(e, "gate_proj"), seed, Init::kMatrix, dt, I, H, base);
                      fill_values(ename(e, "up_proj"), seed, Init::kMatrix, dt, I, H,
                                  base + I * H * es);
                    }
                  }});
  out->push_back({p + ".mlp.experts.down_proj", dt, {E, H, I}, [=](std::byte* dst) {
                    for (int64_t e = 0; e < E; ++e)
                      fill_values(ename(e, "down_proj"), seed, Init::kMatrix, dt, H, I,
                                  dst + e * H * I * es);
                  }});
  if (!fp8) return;
  const int64_t hb = (H + 127) / 128, ib = I / 128;
  out->push_back({p + ".mlp.experts.gate_up_proj_scale_inv",
                  DType::kF32,
                  {E, 2 * ib, hb},
                  [=](std::byte* dst) {
                    auto* o = reinterpret_cast<float*>(dst);
                    for (int64_t e = 0; e < E; ++e) {
                      fill_scales(ename(e, "gate_proj"), seed, I, H, o + e * 2 * ib * hb);
                      fill_scales(ename(e, "up_proj"), seed, I, H, o + e * 2 * ib * hb + ib * hb);
                    }
                  }});
  out->push_back({p + ".mlp.experts.down_proj_scale_inv",
                  DType::kF32,
                  {E, (H + 127) / 128, (I + 127) / 128},
                  [=](std::byte* dst) {
                    auto* o = reinterpret_cast<float*>(dst);
                    const int64_t n = ((H + 127) / 128) * ((I + 127) / 128);
                    for (int64_t e = 0; e < E; ++e)
                      fill_scales(ename(e, "down_proj"), seed, H, I, o + e * n);
                  }});
}

std::vector<Spec> model_specs(const Dims& d, const MakeModelOptions& o) {
  std::vector<Spec> s;
  const bool q = o.fp8;
  auto mat = [&](const std::string& n, int64_t r, int64_t c, bool quant) {
    s.push_back({n, {r, c}, Init::kMatrix, quant && q});
  };
  mat("model.embed_tokens.weight", d.vocab, d.hidden, false);
  for (int64_t l = 0; l < d.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    s.push_back({p + ".input_layernorm.weight", {d.hidden}, Init::kNorm, false});
    s.push_back({p + ".post_attention_layernorm.weight", {d.hidden}, Init::kNorm, false});
    const std::string a = p + ".self_attn";
    mat(a + ".q_a_proj.weight", d.q_lora, d.hidden, true);
    s.push_back({a + ".q_a_layernorm.weight", {d.q_lora}, Init::kNorm, false});
    mat(a + ".q_b_proj.weight", d.heads * (d.nope + d.rope), d.q_lora, true);
    mat(a + ".kv_a_proj_with_mqa.weight", d.kv_lora + d.rope, d.hidden, true);
    s.push_back({a + ".kv_a_layernorm.weight", {d.kv_lora}, Init::kNorm, false});
    mat(a + ".kv_b_proj.weight", d.heads * (d.nope + d.v), d.kv_lora, true);
    mat(a + ".o_proj.weight", d.hidden, d.heads * d.v, true);
    if (l < d.dense) {
      mat(p + ".mlp.gate_proj.weight", d.inter, d.hidden, true);
      mat(p + ".mlp.up_proj.weight", d.inter, d.hidden, true);
      mat(p + ".mlp.down_proj.weight", d.hidden, d.inter, true);
      continue;
    }
    mat(p + ".mlp.gate.weight", d.experts, d.hidden, false);
    s.push_back({p + ".mlp.gate.e_score_correction_bias", {d.experts}, Init::kBias, false});
    if (o.layout == "hf") {
      s.push_back({p, {}, Init::kMatrix, q, true});
    } else {
      for (int64_t e = 0; e < d.experts; ++e) {
        const std::string x = p + ".mlp.experts." + std::to_string(e);
        mat(x + ".gate_proj.weight", d.moe_inter, d.hidden, true);
        mat(x + ".up_proj.weight", d.moe_inter, d.hidden, true);
        mat(x + ".down_proj.weight", d.hidden, d.moe_inter, true);
      }
    }
    const int64_t si = d.moe_inter * d.shared;
    mat(p + ".mlp.shared_experts.gate_proj.weight", si, d.hidden, true);
    mat(p + ".mlp.shared_experts.up_proj.weight", si, d.hidden, true);
    mat(p + ".mlp.shared_experts.down_proj.weight", d.hidden, si, true);
  }
  s.push_back({"model.norm.weight", {d.hidden}, Init::kNorm, false});
  mat("lm_head.weight", d.vocab, d.hidden, false);
  return s;
}

uint64_t tensor_bytes(const TensorToWrite& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t x : t.shape) n *= static_cast<uint64_t>(x);
  return n;
}

void copy_tokenizer(const std::string& out_dir) {
  const fs::path src = fs::path(data_dir()) / "tokenizers" / "deepseek-v3";
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    WS_CHECK_CODE(kNotFound, fs::exists(src / f), "tokenizer file {} missing", (src / f).string());
    fs::copy_file(src / f, fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
  }
}

}  // namespace

void make_model(const MakeModelOptions& o) {
  WS_CHECK_ARG(o.layout == "hf" || o.layout == "deepseek", "--layout: '{}' (hf, deepseek)",
               o.layout);
  WS_CHECK_ARG(!o.out_dir.empty(), "--out: empty path");
  Dims d = preset_dims(o);
  fs::create_directories(o.out_dir);
  if (o.config_only) {
    std::ofstream(fs::path(o.out_dir) / "config.json") << make_config(d, o).dump(1);
    copy_tokenizer(o.out_dir);
    return;
  }
  WS_CHECK_ARG(o.preset != "v2-lite",
               "--preset v2-lite is written with --config-only (its "
               "weights are drawn on the GPU: --load-format dummy)");
  std::vector<TensorToWrite> tensors;
  for (const auto& spec : model_specs(d, o)) {
    if (spec.fused_experts)
      add_fused_experts(spec.name, d, o.fp8, o.seed, &tensors);
    else
      add_tensors(spec, o.seed, &tensors);
  }
  // DeepSeek layout: shards of at most ~4 GiB (at least two, as real checkpoints are sharded).
  std::vector<std::vector<TensorToWrite>> shards;
  if (o.layout == "hf") {
    shards.push_back(std::move(tensors));
  } else {
    uint64_t total = 0;
    for (const auto& t : tensors) total += tensor_bytes(t);
    const uint64_t limit = std::max<uint64_t>(std::min<uint64_t>(4ull << 30, total / 2 + 1), 1);
    shards.emplace_back();
    uint64_t cur = 0;
    for (auto& t : tensors) {
      uint64_t b = tensor_bytes(t);
      if (cur > 0 && cur + b > limit) {
        shards.emplace_back();
        cur = 0;
      }
      cur += b;
      shards.back().push_back(std::move(t));
    }
  }
  ordered_json weight_map = ordered_json::object();
  uint64_t total = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string fn = shards.size() == 1 && o.layout == "hf"
                         ? "model.safetensors"
                         : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    WS_LOG_INFO("writing {}/{} ({} tensors)", o.out_dir, fn, shards[i].size());
    write_safetensors((fs::path(o.out_dir) / fn).string(), shards[i], {{"format", "pt"}});
    for (const auto& t : shards[i]) {
      weight_map[t.name] = fn;
      total += tensor_bytes(t);
    }
  }
  if (o.layout == "deepseek") {
    ordered_json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    std::ofstream(fs::path(o.out_dir) / "model.safetensors.index.json") << idx.dump(1);
  }
  std::ofstream(fs::path(o.out_dir) / "config.json") << make_config(d, o).dump(1);
  copy_tokenizer(o.out_dir);
}

}  // namespace wideserve::model
