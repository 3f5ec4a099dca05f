#include "backend/cuda/attention/mla_token_ref.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/attention/mla_ref.h"

namespace wideserve::cuda {
namespace {

float bf16r(double x) {
  return __bfloat162float(__float2bfloat16(static_cast<float>(x)));
}

}  // namespace

void mla_token_ref(const MlaTokenRefInputs& in, std::vector<double>& out,
                   std::vector<float>& latent) {
  constexpr int64_t kNope = 128, kV = 128, kLat = 512, kRope = 64, kRow = kLat + kRope;
  const int64_t H = in.heads, pos = in.position, ps = in.page_size;
  std::vector<float> cs(kRope / 2), sn(kRope / 2);
  for (int64_t i = 0; i < kRope / 2; ++i) {
    const float a = in.inv_freq[i] * static_cast<float>(pos);
    cs[i] = std::cos(a) * in.attention_factor;
    sn[i] = std::sin(a) * in.attention_factor;
  }
  // The token's latent row: RMSNorm of the latent, rope of k_pe (evens then odds rotated).
  latent.assign(kRow, 0.f);
  double ss = 0;
  for (int64_t i = 0; i < kLat; ++i) ss += double(in.kv_a[i]) * in.kv_a[i];
  const double inv = 1.0 / std::sqrt(ss / kLat + in.eps);
  for (int64_t i = 0; i < kLat; ++i)
    latent[i] = bf16r(double(bf16r(in.kv_a[i] * inv)) * in.kv_a_norm[i]);
  for (int64_t i = 0; i < kRope / 2; ++i) {
    const float a = in.kv_a[kLat + 2 * i], b = in.kv_a[kLat + 2 * i + 1];
    latent[kLat + i] = bf16r(a * cs[i] - b * sn[i]);
    latent[kLat + kRope / 2 + i] = bf16r(b * cs[i] + a * sn[i]);
  }
  // Absorbed query per head: q_nope . W_UK (rounded), then the roped q_pe.
  std::vector<float> qa(H * kRow);
  for (int64_t h = 0; h < H; ++h) {
    const float* q = &in.q[h * in.q_stride];
    const float* uk = &in.w_kv_b[h * (kNope + kV) * kLat];
    for (int64_t j = 0; j < kLat; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < kNope; ++i) acc += double(q[i]) * uk[i * kLat + j];
      qa[h * kRow + j] = bf16r(acc);
    }
    for (int64_t i = 0; i < kRope / 2; ++i) {
      const float a = q[kNope + 2 * i], b = q[kNope + 2 * i + 1];
      qa[h * kRow + kLat + i] = bf16r(a * cs[i] - b * sn[i]);
      qa[h * kRow + kLat + kRope / 2 + i] = bf16r(b * cs[i] + a * sn[i]);
    }
  }
  // Attention over the cache with the token's own row in place, output rounded to bf16.
  std::vector<float> cache = in.kv_cache;
  const int64_t slot = int64_t{in.page_table[pos / ps]} * ps + pos % ps;
  std::copy(latent.begin(), latent.end(), cache.begin() + slot * kRow);
  const int64_t mpps = static_cast<int64_t>(in.page_table.size());
  std::vector<double> o, lse;
  mla_attention_ref(qa, cache, in.page_table, {static_cast<int32_t>(in.seq_len)}, {0},
                    {static_cast<int32_t>(pos)}, H, mpps, ps, in.softmax_scale, o, lse);
  out.assign(H * kV, 0.0);
  for (int64_t h = 0; h < H; ++h) {
    const float* uv = &in.w_kv_b[(h * (kNope + kV) + kNope) * kLat];
    for (int64_t v = 0; v < kV; ++v) {
      double acc = 0;
      for (int64_t j = 0; j < kLat; ++j) acc += double(bf16r(o[h * kLat + j])) * uv[v * kLat + j];
      out[h * kV + v] = acc;
    }
  }
}

}  // namespace wideserve::cuda
