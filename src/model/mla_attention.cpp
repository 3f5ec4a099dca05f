#include "model/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/ops.h"
#include "common/check.h"
#include "common/thread_pool.h"

namespace wideserve::model {
namespace {

void linear(const LinearWeight& l, const float* x, float* y, int64_t rows) {
  cpu::linear(x, l.w.data(), y, rows, l.out, l.in);
  if (!l.bias.empty())
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < l.out; ++i) y[r * l.out + i] += l.bias[i];
}

// Masks scores of row i (absolute position p0 + i) past that position, then softmaxes.
void causal_softmax(float* s, int64_t n, int64_t len, int64_t p0) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t visible = std::min(len, p0 + i + 1);
    cpu::softmax_rows(s + i * len, 1, visible, len);
    std::fill(s + i * len + visible, s + (i + 1) * len, 0.0f);
  }
}

// HF's formulation: expand every cached latent into per-head keys and values.
void attend_expanded(const ModelConfig& c, const AttentionWeights& w, const float* q, int64_t n,
                     int64_t p0, const float* cache, int64_t len, float* out) {
  const int64_t nh = c.num_attention_heads, nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim,
                vd = c.v_head_dim, qk = c.qk_head_dim(), lat = c.kv_lora_rank,
                row = c.kv_cache_dim();
  const float scale = static_cast<float>(c.attention_scale());
  std::vector<float> kv(len * nh * (nope + vd));
  // kv = latent @ kv_b^T, reading the latent part of each cache row (stride row).
  cpu::gemm(true, len, nh * (nope + vd), lat, 1.0f, cache, row, w.kv_b.w.data(), lat, 0.0f,
            kv.data(), nh * (nope + vd));
  parallel_for(nh, 1, [&](size_t hb, size_t he) {
    std::vector<float> k(len * qk), s(n * len);
    for (size_t h = hb; h < he; ++h) {
      for (int64_t t = 0; t < len; ++t) {
        std::memcpy(&k[t * qk], &kv[t * nh * (nope + vd) + h * (nope + vd)], nope * sizeof(float));
        std::memcpy(&k[t * qk + nope], cache + t * row + lat, rd * sizeof(float));
      }
      cpu::gemm(true, n, len, qk, scale, q + h * qk, nh * qk, k.data(), qk, 0.0f, s.data(), len);
      causal_softmax(s.data(), n, len, p0);
      cpu::gemm(false, n, vd, len, 1.0f, s.data(), len, kv.data() + h * (nope + vd) + nope,
                nh * (nope + vd), 0.0f, out + h * vd, nh * vd);
    }
  });
}

// Absorbed form: q_nope is folded through W_UK into the latent space, so every head attends over
// the same 576-wide cache rows; W_UV is applied to the latent output afterwards.
void attend_absorbed(const ModelConfig& c, const AttentionWeights& w, const float* q, int64_t n,
                     int64_t p0, const float* cache, int64_t len, float* out) {
  const int64_t nh = c.num_attention_heads, nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim,
                vd = c.v_head_dim, qk = c.qk_head_dim(), lat = c.kv_lora_rank,
                row = c.kv_cache_dim();
  const float scale = static_cast<float>(c.attention_scale());
  // Rows ordered head-major: [h][i] so that each head's queries are one GEMM operand.
  std::vector<float> qc(nh * n * row), s(nh * n * len), olat(nh * n * lat);
  for (int64_t h = 0; h < nh; ++h) {
    const float* w_uk = w.kv_b.w.data() + h * (nope + vd) * lat;  // [nope, lat]
    cpu::gemm(false, n, lat, nope, 1.0f, q + h * qk, nh * qk, w_uk, lat, 0.0f, &qc[h * n * row],
              row);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(&qc[(h * n + i) * row + lat], q + i * nh * qk + h * qk + nope,
                  rd * sizeof(float));
  }
  cpu::gemm(true, nh * n, len, row, scale, qc.data(), row, cache, row, 0.0f, s.data(), len);
  for (int64_t h = 0; h < nh; ++h) causal_softmax(&s[h * n * len], n, len, p0);
  cpu::gemm(false, nh * n, lat, len, 1.0f, s.data(), len, cache, row, 0.0f, olat.data(), lat);
  for (int64_t h = 0; h < nh; ++h) {
    const float* w_uv = w.kv_b.w.data() + (h * (nope + vd) + nope) * lat;  // [vd, lat]
    cpu::gemm(true, n, vd, lat, 1.0f, &olat[h * n * lat], lat, w_uv, lat, 0.0f, out + h * vd,
              nh * vd);
  }
}

}  // namespace

void mla_attention(const ModelConfig& c, const Rope& rope, const AttentionWeights& w, int64_t layer,
                   std::span<const SequenceInput> seqs, std::span<const int64_t> seq_rows,
                   std::span<const int64_t> positions, const float* x, float* out,
                   kvcache::MlaKvStorage& kv, AttentionMode mode) {
  const int64_t rows = seq_rows.back();
  const int64_t nh = c.num_attention_heads, qk = c.qk_head_dim(), nope = c.qk_nope_head_dim,
                lat = c.kv_lora_rank, row = c.kv_cache_dim();
  // Queries [rows, nh * qk].
  std::vector<float> q(rows * nh * qk);
  if (c.q_lora_rank > 0) {
    std::vector<float> qa(rows * c.q_lora_rank);
    linear(w.q_a, x, qa.data(), rows);
    cpu::rms_norm(qa.data(), w.q_a_norm.data(), static_cast<float>(c.rms_norm_eps), qa.data(), rows,
                  c.q_lora_rank, c.q_lora_rank, c.q_lora_rank);
    linear(w.q_b, qa.data(), q.data(), rows);
  } else {
    linear(w.q, x, q.data(), rows);
  }
  // Latent rows [rows, lat + rope]: normalize the latent, rotate the key part, write the cache.
  std::vector<float> ckv(rows * row);
  linear(w.kv_a, x, ckv.data(), rows);
  cpu::rms_norm(ckv.data(), w.kv_a_norm.data(), static_cast<float>(c.rms_norm_eps), ckv.data(),
                rows, lat, row, row);
  parallel_for(rows, 16, [&](size_t b, size_t e) {
    for (size_t r = b; r < e; ++r) {
      rope.apply(&ckv[r * row + lat], positions[r]);
      for (int64_t h = 0; h < nh; ++h) rope.apply(&q[(r * nh + h) * qk + nope], positions[r]);
    }
  });
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int64_t r = seq_rows[s]; r < seq_rows[s + 1]; ++r) {
      int64_t slot = kv.slot(seqs[s].pages, positions[r]);
      std::memcpy(kv.row(layer, slot), &ckv[r * row], row * sizeof(float));
    }
  }
  // Attention per sequence over its cached rows [0, start + n).
  std::vector<float> attn(rows * nh * c.v_head_dim);
  parallel_for(seqs.size(), 1, [&](size_t sb, size_t se) {
    for (size_t s = sb; s < se; ++s) {
      const int64_t n = seq_rows[s + 1] - seq_rows[s];
      if (n == 0) continue;
      const int64_t p0 = seqs[s].start_pos, len = p0 + n;
      std::vector<float> cache(len * row);
      kv.gather(layer, seqs[s].pages, len, cache.data());
      const float* qs = &q[seq_rows[s] * nh * qk];
      float* os = &attn[seq_rows[s] * nh * c.v_head_dim];
      bool absorbed = mode == AttentionMode::kAbsorbed || (mode == AttentionMode::kAuto && n == 1);
      if (absorbed)
        attend_absorbed(c, w, qs, n, p0, cache.data(), len, os);
      else
        attend_expanded(c, w, qs, n, p0, cache.data(), len, os);
    }
  });
  linear(w.o, attn.data(), out, rows);
}

}  // namespace wideserve::model
