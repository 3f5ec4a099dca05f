// Internal to the MLA decode kernels (v4 mla_decode_ws.cu, v5 mla_decode_wgmma.cu): the device
// pieces both share: the CTA's KV range of its split, the online-softmax step of a row and the
// writes of a finished query row.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/attention/mla.h"

namespace wideserve::cuda {

// Cache rows [lo, hi) of token t that KV split z of `splits` covers: an equal share, in whole
// tiles of kBn rows, of the rows the token sees.
struct MlaSplitRange {
  int seq, lo, hi, ntiles;
};
template <int kBn>
__device__ __forceinline__ MlaSplitRange mla_split_range(const MlaAttentionParams& p, int t, int z,
                                                         int splits) {
  const int seq = p.token_seq[t];
  const int lim = max(0, min(p.token_pos[t] + 1, p.seq_lens[seq]));
  int chunk = (lim + splits - 1) / splits;
  chunk = (chunk + kBn - 1) / kBn * kBn;
  const int lo = min(lim, z * chunk), hi = min(lim, lo + chunk);
  return {seq, lo, hi, (hi - lo + kBn - 1) / kBn};
}

// One row's online-softmax step (base 2) in the m16n8 accumulator layout, where lanes 4g..4g+3
// hold row g: takes this thread's maximum of the tile's scores, reduces it over the quad, moves
// the running maximum m_run, sets mu (the offset P is taken against: 0 while every score so far
// is masked) and rescales l_run; returns the factor O must be rescaled by.
__device__ __forceinline__ float mla_online_max(float mx, float& m_run, float& l_run, float& mu) {
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float m_new = fmaxf(m_run, mx);
  mu = m_new == -INFINITY ? 0.f : m_new;
  const float alpha = exp2f(m_run - mu);
  m_run = m_new;
  l_run *= alpha;
  return alpha;
}

// Row th of `rows` (tokens x heads): its lse into split z's partials (the workspace's
// [splits][rows] after the [splits][rows][512] outputs), or the caller's lse with one split.
__device__ __forceinline__ void mla_store_lse(const MlaAttentionParams& p, int splits, int z,
                                              int64_t rows, int64_t th, float lse) {
  if (splits > 1) {
    float* lse_part =
        static_cast<float*>(p.workspace) + static_cast<int64_t>(splits) * rows * kMlaLatentDim;
    lse_part[static_cast<int64_t>(z) * rows + th] = lse;
  } else if (p.lse != nullptr) {
    p.lse[th] = lse;
  }
}

// kN column pairs scaled by inv, from accumulator fragments: pair n sits at acc[4n + 2h],
// acc[4n + 2h + 1] (h: the row's half of the m16 tile) and goes to dst[8n], dst[8n + 1] (fp32 or
// bf16; dst may be global or shared memory).
template <int kN>
__device__ __forceinline__ void mla_write_pairs(float* dst, const float* acc, int h, float inv) {
#pragma unroll
  for (int n = 0; n < kN; ++n)
    *reinterpret_cast<float2*>(dst + n * 8) =
        make_float2(acc[4 * n + 2 * h] * inv, acc[4 * n + 2 * h + 1] * inv);
}
template <int kN>
__device__ __forceinline__ void mla_write_pairs(__nv_bfloat16* dst, const float* acc, int h,
                                                float inv) {
#pragma unroll
  for (int n = 0; n < kN; ++n)
    *reinterpret_cast<__nv_bfloat162*>(dst + n * 8) =
        __floats2bfloat162_rn(acc[4 * n + 2 * h] * inv, acc[4 * n + 2 * h + 1] * inv);
}

// Row th of `rows` (tokens x heads), columns col + 8n, +1 (mla_write_pairs): fp32 into split z's
// partials, or bf16 into out when there is one split.
template <int kN>
__device__ __forceinline__ void mla_store_row(const MlaAttentionParams& p, int splits, int z,
                                              int64_t rows, int64_t th, int col, const float* acc,
                                              int h, float inv) {
  if (splits > 1)
    mla_write_pairs<kN>(static_cast<float*>(p.workspace) +
                            (static_cast<int64_t>(z) * rows + th) * kMlaLatentDim + col,
                        acc, h, inv);
  else
    mla_write_pairs<kN>(p.out + th * kMlaLatentDim + col, acc, h, inv);
}

}  // namespace wideserve::cuda
