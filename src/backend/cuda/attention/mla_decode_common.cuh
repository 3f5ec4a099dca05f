// Internal to the MLA decode kernels (v4 mla_decode_ws.cu, v5 mla_decode_wgmma.cu, v6
// mla_decode_tma.cu): the device pieces they share: the CTA's KV range of its split, the
// online-softmax step of a row, the writes of a finished query row and the wgmma kernels'
// staged bulk-copy epilogue.
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

// One tile's online-softmax step (base 2) on S in the wgmma / m16n8 accumulator layout, kN n8
// tiles of it (sc[4n + e]: this lane's rows g (e < 2) and g + 8, at position pos0 + 8n + (e & 1)):
// scores are scaled, those at positions >= hi (all when !valid) become P = 0 and leave the state
// as it was; sc becomes P, m_run / l_run move on, alpha is each row's rescale of O.
template <int kN>
__device__ __forceinline__ void mla_tile_softmax(float (&sc)[4 * kN], int pos0, int hi, bool valid,
                                                 float scale_log2, float (&m_run)[2],
                                                 float (&l_run)[2], float (&alpha)[2]) {
  float mx[2] = {-INFINITY, -INFINITY}, mu[2];
#pragma unroll
  for (int n = 0; n < kN; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int pos = pos0 + n * 8 + (e & 1);
      sc[4 * n + e] = valid && pos < hi ? sc[4 * n + e] * scale_log2 : -INFINITY;
      mx[e >> 1] = fmaxf(mx[e >> 1], sc[4 * n + e]);
    }
#pragma unroll
  for (int h = 0; h < 2; ++h) alpha[h] = mla_online_max(mx[h], m_run[h], l_run[h], mu[h]);
#pragma unroll
  for (int n = 0; n < kN; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      sc[4 * n + e] = exp2f(sc[4 * n + e] - mu[e >> 1]);
      l_run[e >> 1] += sc[4 * n + e];
    }
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

// The wgmma kernels' (v5, v6) epilogue stages a CTA's output rows in its then free KV ring, row
// pitch padded so a warp's accumulator-layout writes hit 32 distinct banks, and one warp sends
// them out with bulk copies (mla_bulk_store_rows).
inline constexpr uint32_t kMlaStageRowBf16 = kMlaLatentDim * 2;
inline constexpr uint32_t kMlaStagePitchBf16 = kMlaStageRowBf16 + 16;
inline constexpr uint32_t kMlaStageRowF32 = kMlaLatentDim * 4;
inline constexpr uint32_t kMlaStagePitchF32 = kMlaStageRowF32 + 32;

// The values mla_store_row writes, into staging row `row` (fp32 partials when f32, else bf16).
template <int kN>
__device__ __forceinline__ void mla_stage_pairs(unsigned char* row, bool f32, int col,
                                                const float* acc, int h, float inv) {
  if (f32)
    mla_write_pairs<kN>(reinterpret_cast<float*>(row) + col, acc, h, inv);
  else
    mla_write_pairs<kN>(reinterpret_cast<__nv_bfloat16*>(row) + col, acc, h, inv);
}

// One warp: rows th0 .. th0 + nrows - 1 of `rows` (tokens x heads), staged at shared address
// `staging` with mla_stage_pairs' pitch, to split z's partials or the output, through the TMA
// engine. Returns once the copies have read shared memory (the CTA may exit while they write).
__device__ __forceinline__ void mla_bulk_store_rows(const MlaAttentionParams& p, int splits, int z,
                                                    int64_t rows, int64_t th0, int nrows,
                                                    uint32_t staging, int lane) {
  const bool f32 = splits > 1;
  const uint32_t pitch = f32 ? kMlaStagePitchF32 : kMlaStagePitchBf16;
  for (int r = lane; r < nrows; r += 32) {
    void* dst = f32 ? static_cast<void*>(static_cast<float*>(p.workspace) +
                                         (static_cast<int64_t>(z) * rows + th0 + r) * kMlaLatentDim)
                    : static_cast<void*>(p.out + (th0 + r) * kMlaLatentDim);
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst),
                 "r"(staging + r * pitch), "r"(f32 ? kMlaStageRowF32 : kMlaStageRowBf16)
                 : "memory");
  }
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}

}  // namespace wideserve::cuda
