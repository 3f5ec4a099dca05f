#include "backend/cuda/model/cuda_weights.h"

#include <cmath>
#include <cstring>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/ops/ops.h"
#include "common/check.h"
#include "common/float_types.h"
#include "common/logging.h"
#include "model/checkpoint.h"

namespace wideserve::cuda {
namespace {

using model::Checkpoint;
using model::DType;
using model::ModelConfig;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

DeviceBuffer<__nv_bfloat16> upload_bf16(const std::vector<float>& f) {
  std::vector<__nv_bfloat16> h(f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    uint16_t b = float_to_bf16(f[i]);
    std::memcpy(&h[i], &b, 2);
  }
  DeviceBuffer<__nv_bfloat16> d(h.size());
  d.upload(h);
  return d;
}

DeviceBuffer<float> upload_f32(const std::vector<float>& f) {
  DeviceBuffer<float> d(f.size());
  d.upload(f);
  return d;
}

// Raw bytes of an FP8 tensor into a device buffer at element offset `at`.
void upload_raw(const model::TensorView& tv, __nv_fp8_e4m3* dst) {
  WS_CUDA_CHECK(cudaMemcpy(dst, tv.data, tv.nbytes, cudaMemcpyHostToDevice));
}

class Loader {
 public:
  Loader(const std::string& dir, const ModelConfig& c, bool dequantize_fp8)
      : ck_(dir, c.fp8_block_rows, c.fp8_block_cols), c_(c), dequantize_fp8_(dequantize_fp8) {}

  Checkpoint& ck() { return ck_; }
  size_t bytes = 0;

  DeviceBuffer<__nv_bfloat16> bf16(const std::string& name, std::vector<int64_t> shape) {
    auto d = upload_bf16(ck_.load_f32(name, shape));
    bytes += d.bytes();
    return d;
  }

  // FP8 with 128x128 blocks stays FP8; anything else becomes bf16.
  bool stored_fp8(const std::string& name) const {
    return !dequantize_fp8_ && ck_.view(name).dtype == DType::kF8E4M3 && c_.fp8_block_rows == 128 &&
           c_.fp8_block_cols == 128;
  }

  const model::TensorView& scale_view(const std::string& name) {
    std::string s = name + "_scale_inv";
    return ck_.view(s);
  }

  DevLinear linear(const std::string& prefix, int64_t out, int64_t in) {
    DevLinear l;
    l.out = out;
    l.in = in;
    const std::string name = prefix + ".weight";
    WS_CHECK_CODE(kUnimplemented, !ck_.has(prefix + ".bias"),
                  "{}: linear biases are not supported on the GPU backend", prefix);
    if (stored_fp8(name)) {
      const auto& tv = ck_.view(name);
      WS_CHECK_CODE(kDataLoss, (tv.shape == std::vector<int64_t>{out, in}),
                    "{}: tensor '{}' has the wrong shape", tv.file, name);
      l.fp8 = true;
      l.q = DeviceBuffer<__nv_fp8_e4m3>(out * in);
      upload_raw(tv, l.q.get());
      l.scale =
          upload_f32(ck_.load_f32(name + "_scale_inv", {ceil_div(out, 128), ceil_div(in, 128)}));
      bytes += l.q.bytes() + l.scale.bytes();
    } else {
      l.w = bf16(name, {out, in});
    }
    return l;
  }

  // gate_proj and up_proj [I, H] each -> one [2I, H] linear.
  DevLinear gate_up(const std::string& prefix, int64_t inter, int64_t hidden) {
    DevLinear l;
    l.out = 2 * inter;
    l.in = hidden;
    const std::string g = prefix + ".gate_proj.weight", u = prefix + ".up_proj.weight";
    if (stored_fp8(g) && stored_fp8(u) && inter % 128 == 0) {
      l.fp8 = true;
      l.q = DeviceBuffer<__nv_fp8_e4m3>(2 * inter * hidden);
      upload_raw(ck_.view(g), l.q.get());
      upload_raw(ck_.view(u), l.q.get() + inter * hidden);
      const int64_t sr = inter / 128, sc = ceil_div(hidden, 128);
      auto sg = ck_.load_f32(g + "_scale_inv", {sr, sc});
      auto su = ck_.load_f32(u + "_scale_inv", {sr, sc});
      sg.insert(sg.end(), su.begin(), su.end());
      l.scale = upload_f32(sg);
      bytes += l.q.bytes() + l.scale.bytes();
    } else {
      auto w = ck_.load_f32(g, {inter, hidden});
      auto wu = ck_.load_f32(u, {inter, hidden});
      w.insert(w.end(), wu.begin(), wu.end());
      l.w = upload_bf16(w);
      bytes += l.w.bytes();
    }
    return l;
  }

  DevExperts experts(const std::string& prefix) {
    DevExperts x;
    const int64_t E = c_.n_routed_experts, I = c_.moe_intermediate_size, H = c_.hidden_size;
    x.num = E;
    x.inter = I;
    x.hidden = H;
    const bool fused = ck_.has(prefix + ".gate_up_proj");
    const std::string probe = fused ? prefix + ".gate_up_proj" : prefix + ".0.gate_proj.weight";
    if (!dequantize_fp8_ && stored_fp8(probe) && I % 128 == 0 && H % 128 == 0) {
      x.fp8 = true;
      x.gate_up_q = DeviceBuffer<__nv_fp8_e4m3>(E * 2 * I * H);
      x.down_q = DeviceBuffer<__nv_fp8_e4m3>(E * H * I);
      std::vector<float> sgu, sd;
      if (fused) {
        upload_raw(ck_.view(prefix + ".gate_up_proj"), x.gate_up_q.get());
        upload_raw(ck_.view(prefix + ".down_proj"), x.down_q.get());
        sgu = ck_.load_f32(prefix + ".gate_up_proj_scale_inv", {E, 2 * I / 128, H / 128});
        sd = ck_.load_f32(prefix + ".down_proj_scale_inv", {E, H / 128, I / 128});
      } else {
        for (int64_t e = 0; e < E; ++e) {
          const std::string p = prefix + "." + std::to_string(e);
          upload_raw(ck_.view(p + ".gate_proj.weight"), x.gate_up_q.get() + e * 2 * I * H);
          upload_raw(ck_.view(p + ".up_proj.weight"), x.gate_up_q.get() + e * 2 * I * H + I * H);
          upload_raw(ck_.view(p + ".down_proj.weight"), x.down_q.get() + e * H * I);
          for (const char* n : {".gate_proj.weight_scale_inv", ".up_proj.weight_scale_inv"}) {
            auto s = ck_.load_f32(p + n, {I / 128, H / 128});
            sgu.insert(sgu.end(), s.begin(), s.end());
          }
          auto s = ck_.load_f32(p + ".down_proj.weight_scale_inv", {H / 128, I / 128});
          sd.insert(sd.end(), s.begin(), s.end());
        }
      }
      x.gate_up_scale = upload_f32(sgu);
      x.down_scale = upload_f32(sd);
      bytes +=
          x.gate_up_q.bytes() + x.down_q.bytes() + x.gate_up_scale.bytes() + x.down_scale.bytes();
      return x;
    }
    // BF16 (or FP8 shapes without whole blocks): one expert at a time through float32.
    x.gate_up = DeviceBuffer<__nv_bfloat16>(E * 2 * I * H);
    x.down = DeviceBuffer<__nv_bfloat16>(E * H * I);
    auto put = [](const std::vector<float>& f, __nv_bfloat16* dst) {
      std::vector<uint16_t> h(f.size());
      for (size_t i = 0; i < f.size(); ++i) h[i] = float_to_bf16(f[i]);
      WS_CUDA_CHECK(cudaMemcpy(dst, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    };
    if (fused) {
      put(ck_.load_f32(prefix + ".gate_up_proj", {E, 2 * I, H}), x.gate_up.get());
      put(ck_.load_f32(prefix + ".down_proj", {E, H, I}), x.down.get());
    } else {
      for (int64_t e = 0; e < E; ++e) {
        const std::string p = prefix + "." + std::to_string(e);
        put(ck_.load_f32(p + ".gate_proj.weight", {I, H}), x.gate_up.get() + e * 2 * I * H);
        put(ck_.load_f32(p + ".up_proj.weight", {I, H}), x.gate_up.get() + e * 2 * I * H + I * H);
        put(ck_.load_f32(p + ".down_proj.weight", {H, I}), x.down.get() + e * H * I);
      }
    }
    bytes += x.gate_up.bytes() + x.down.bytes();
    return x;
  }

 private:
  Checkpoint ck_;
  const ModelConfig& c_;
  bool dequantize_fp8_;
};

}  // namespace

DevWeights load_dev_weights(const std::string& model_dir, const ModelConfig& c,
                            bool dequantize_fp8) {
  Loader ld(model_dir, c, dequantize_fp8);
  DevWeights w;
  const int64_t H = c.hidden_size, V = c.vocab_size, nh = c.num_attention_heads;
  w.embed = ld.bf16("model.embed_tokens.weight", {V, H});
  w.layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    const std::string a = p + ".self_attn";
    DevLayer& L = w.layers[l];
    L.input_norm = ld.bf16(p + ".input_layernorm.weight", {H});
    L.post_attention_norm = ld.bf16(p + ".post_attention_layernorm.weight", {H});
    if (c.q_lora_rank > 0) {
      L.q_a = ld.linear(a + ".q_a_proj", c.q_lora_rank, H);
      L.q_a_norm = ld.bf16(a + ".q_a_layernorm.weight", {c.q_lora_rank});
      L.q_b = ld.linear(a + ".q_b_proj", nh * c.qk_head_dim(), c.q_lora_rank);
    } else {
      L.q = ld.linear(a + ".q_proj", nh * c.qk_head_dim(), H);
    }
    L.kv_a = ld.linear(a + ".kv_a_proj_with_mqa", c.kv_cache_dim(), H);
    L.kv_a_norm = ld.bf16(a + ".kv_a_layernorm.weight", {c.kv_lora_rank});
    L.kv_b = ld.bf16(a + ".kv_b_proj.weight",
                     {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank});
    L.o = ld.linear(a + ".o_proj", H, nh * c.v_head_dim);
    L.is_moe = c.is_moe_layer(l);
    if (!L.is_moe) {
      L.gate_up = ld.gate_up(p + ".mlp", c.intermediate_size, H);
      L.down = ld.linear(p + ".mlp.down_proj", H, c.intermediate_size);
      continue;
    }
    L.router = ld.bf16(p + ".mlp.gate.weight", {c.n_routed_experts, H});
    if (ld.ck().has(p + ".mlp.gate.e_score_correction_bias"))
      L.router_bias = upload_f32(
          ld.ck().load_f32(p + ".mlp.gate.e_score_correction_bias", {c.n_routed_experts}));
    L.experts = ld.experts(p + ".mlp.experts");
    if (c.n_shared_experts > 0) {
      const int64_t si = c.moe_intermediate_size * c.n_shared_experts;
      L.has_shared = true;
      L.gate_up = ld.gate_up(p + ".mlp.shared_experts", si, H);
      L.down = ld.linear(p + ".mlp.shared_experts.down_proj", H, si);
    }
  }
  w.final_norm = ld.bf16("model.norm.weight", {H});
  if (ld.ck().has("lm_head.weight") || !c.tie_word_embeddings)
    w.lm_head = ld.bf16("lm_head.weight", {V, H});
  else
    w.lm_head = ld.bf16("model.embed_tokens.weight", {V, H});
  w.bytes = ld.bytes;
  return w;
}

namespace {

class DummyMaker {
 public:
  DummyMaker(bool fp8, uint64_t seed) : fp8_(fp8), seed_(seed) {}
  size_t bytes = 0;

  DeviceBuffer<__nv_bfloat16> bf16(int64_t n, float scale) {
    DeviceBuffer<__nv_bfloat16> d(n);
    launch_fill_random_bf16(d.get(), n, ++seed_, scale, nullptr);
    bytes += d.bytes();
    return d;
  }
  // Norm weights near 1.
  DeviceBuffer<__nv_bfloat16> norm(int64_t n) {
    DeviceBuffer<__nv_bfloat16> d(n);
    launch_fill_random_bf16(d.get(), n, ++seed_, 0.1f, nullptr);
    std::vector<__nv_bfloat16> h = d.download();
    for (auto& v : h) v = __float2bfloat16(1.0f + __bfloat162float(v));
    d.upload(h);
    bytes += d.bytes();
    return d;
  }
  DeviceBuffer<float> f32(int64_t n, float lo, float hi) {
    DeviceBuffer<float> d(n);
    launch_fill_random_f32(d.get(), n, ++seed_, lo, hi, nullptr);
    bytes += d.bytes();
    return d;
  }
  // Uniform weights with unit-variance outputs: bound sqrt(3 / in).
  DevLinear linear(int64_t out, int64_t in) {
    DevLinear l;
    l.out = out;
    l.in = in;
    const float bound = std::sqrt(3.0f / static_cast<float>(in));
    // A ragged last row block is stored as checkpoints store it (V3's kv_a: 576 rows, 5 blocks).
    if (fp8_ && in % 128 == 0) {
      l.fp8 = true;
      l.q = DeviceBuffer<__nv_fp8_e4m3>(out * in);
      launch_fill_random_fp8(l.q.get(), out * in, ++seed_, 448.0f, nullptr);
      l.scale = f32(ceil_div(out, 128) * (in / 128), bound / 448.0f * 0.9f, bound / 448.0f * 1.1f);
      bytes += l.q.bytes();
    } else {
      l.w = bf16(out * in, bound);
    }
    return l;
  }
  DevExperts experts(int64_t E, int64_t I, int64_t H) {
    DevExperts x;
    x.num = E;
    x.inter = I;
    x.hidden = H;
    const float bh = std::sqrt(3.0f / static_cast<float>(H)),
                bi = std::sqrt(3.0f / static_cast<float>(I));
    if (fp8_ && I % 128 == 0 && H % 128 == 0) {
      x.fp8 = true;
      x.gate_up_q = DeviceBuffer<__nv_fp8_e4m3>(E * 2 * I * H);
      x.down_q = DeviceBuffer<__nv_fp8_e4m3>(E * H * I);
      launch_fill_random_fp8(x.gate_up_q.get(), E * 2 * I * H, ++seed_, 448.0f, nullptr);
      launch_fill_random_fp8(x.down_q.get(), E * H * I, ++seed_, 448.0f, nullptr);
      x.gate_up_scale = f32(E * (2 * I / 128) * (H / 128), bh / 448.f, bh / 448.f);
      x.down_scale = f32(E * (H / 128) * (I / 128), bi / 448.f, bi / 448.f);
      bytes += x.gate_up_q.bytes() + x.down_q.bytes();
    } else {
      x.gate_up = bf16(E * 2 * I * H, bh);
      x.down = bf16(E * H * I, bi);
    }
    return x;
  }

 private:
  bool fp8_;
  uint64_t seed_;
};

}  // namespace

DevWeights dummy_dev_weights(const ModelConfig& c, bool fp8, uint64_t seed) {
  DummyMaker mk(fp8, seed);
  DevWeights w;
  const int64_t H = c.hidden_size, V = c.vocab_size, nh = c.num_attention_heads;
  w.embed = mk.bf16(V * H, 1.0f);
  w.layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    DevLayer& L = w.layers[l];
    L.input_norm = mk.norm(H);
    L.post_attention_norm = mk.norm(H);
    if (c.q_lora_rank > 0) {
      L.q_a = mk.linear(c.q_lora_rank, H);
      L.q_a_norm = mk.norm(c.q_lora_rank);
      L.q_b = mk.linear(nh * c.qk_head_dim(), c.q_lora_rank);
    } else {
      L.q = mk.linear(nh * c.qk_head_dim(), H);
    }
    L.kv_a = mk.linear(c.kv_cache_dim(), H);
    L.kv_a_norm = mk.norm(c.kv_lora_rank);
    L.kv_b = mk.bf16(nh * (c.qk_nope_head_dim + c.v_head_dim) * c.kv_lora_rank,
                     std::sqrt(3.0f / static_cast<float>(c.kv_lora_rank)));
    L.o = mk.linear(H, nh * c.v_head_dim);
    L.is_moe = c.is_moe_layer(l);
    if (!L.is_moe) {
      L.gate_up = mk.linear(2 * c.intermediate_size, H);
      L.down = mk.linear(H, c.intermediate_size);
      continue;
    }
    L.router = mk.bf16(c.n_routed_experts * H, std::sqrt(3.0f / static_cast<float>(H)));
    if (c.topk_method == model::TopkMethod::kNoauxTc)
      L.router_bias = mk.f32(c.n_routed_experts, -0.01f, 0.01f);
    L.experts = mk.experts(c.n_routed_experts, c.moe_intermediate_size, H);
    if (c.n_shared_experts > 0) {
      const int64_t si = c.moe_intermediate_size * c.n_shared_experts;
      L.has_shared = true;
      L.gate_up = mk.linear(2 * si, H);
      L.down = mk.linear(H, si);
    }
  }
  w.final_norm = mk.norm(H);
  w.lm_head = mk.bf16(V * H, std::sqrt(3.0f / static_cast<float>(H)));
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  w.bytes = mk.bytes;
  return w;
}

int64_t fuse_qkv_a(DevWeights& w) {
  int64_t fused = 0;
  auto copy = [](void* dst, const void* src, size_t bytes) {
    WS_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  };
  for (DevLayer& L : w.layers) {
    const DevLinear &a = L.q_a, &b = L.kv_a;
    if (a.out == 0 || b.out == 0 || a.in != b.in || a.fp8 != b.fp8 || (a.fp8 && a.out % 128 != 0))
      continue;
    DevLinear f;
    f.out = a.out + b.out;
    f.in = a.in;
    f.fp8 = a.fp8;
    if (f.fp8) {
      f.q = DeviceBuffer<__nv_fp8_e4m3>(f.out * f.in);
      copy(f.q.get(), a.q.get(), a.q.bytes());
      copy(f.q.get() + a.out * a.in, b.q.get(), b.q.bytes());
      // Scale rows [ceil(out/128)][ceil(in/128)]: a's blocks end where b's begin.
      f.scale = DeviceBuffer<float>(a.scale.size() + b.scale.size());
      copy(f.scale.get(), a.scale.get(), a.scale.bytes());
      copy(f.scale.get() + a.scale.size(), b.scale.get(), b.scale.bytes());
    } else {
      f.w = DeviceBuffer<__nv_bfloat16>(f.out * f.in);
      copy(f.w.get(), a.w.get(), a.w.bytes());
      copy(f.w.get() + a.out * a.in, b.w.get(), b.w.bytes());
    }
    L.qkv_a = std::move(f);
    L.q_a = DevLinear{};
    L.kv_a = DevLinear{};
    ++fused;
  }
  return fused;
}

}  // namespace wideserve::cuda
