// GEMVs for decode at a few rows on tensor cores: FP8 block-scaled (1 <= m <= 8) and BF16
// (1 <= m <= 4). Weights go from global memory straight into MMA B fragments (one 16-byte load
// per lane feeds two MMAs), with no shared-memory ring and no block barriers in the main loop, so
// a warp keeps 16 loads in flight and the read runs near HBM rate. Operand contracts as
// GemmFp8BlockParams / GemmBf16Params; 16-byte aligned rows, k % 128 == 0 (BF16: k % 32 == 0).
// Design and numbers: docs/cuda_gemm.md "FP8 GEMV" and "BF16 GEMV".
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/cuda/gemm/gemm.h"

namespace wideserve::cuda {

inline constexpr int64_t kFp8GemvMaxM = 8;
inline constexpr int64_t kBf16GemvMaxM = 4;

// Warps of a CTA along k (1, 2, 4 or 8; the CTA covers 8 * 8 / warps_k weight rows); 0 = by shape.
struct GemvConfig {
  int warps_k = 0;
  // BF16 GEMV with an fp32 y and beta != 0, one matrix, m <= 4: y's old value is final before the
  // launch (its writer is at least two launches back, or the launch is not programmatic), so it
  // is read before the wait instead of after the dot products (one L2 round trip off the tail).
  bool y_early = false;
};
// The split for a shape: the fewest k slices that give every SM ~12 warps of rows (at most 8;
// the fastest k split at the V3 decode shapes on the H200).
int plan_gemv_warps_k(int64_t n, int64_t k, int sm_count);

// Why the FP8 kernel cannot run p ("" = it can): m outside 1..8, k % 128 != 0, x or w not 16-byte
// aligned, null pointers, w_scale_ld < k/128, x rows too large for shared memory.
std::string fp8_gemv_unsupported(const GemmFp8BlockParams& p);
// y = x w^T (+ beta y), bf16 out. Throws kInvalidArgument when fp8_gemv_unsupported(p) is not
// empty or cfg.warps_k is not 0, 1, 2, 4 or 8.
void launch_fp8_gemv(const GemmFp8BlockParams& p, const GemvConfig& cfg, cudaStream_t stream);

// The same for BF16 (m <= 4; k a multiple of 32, not of 128 (a partial last k block is read as
// zeros past k); x/w row strides multiples of 8 elements; y bf16 or fp32, any ldy).
std::string bf16_gemv_unsupported(const GemmBf16Params& p);
void launch_bf16_gemv(const GemmBf16Params& p, const GemvConfig& cfg, cudaStream_t stream);

// Per-head BF16 GEMVs (MLA's W_UV at decode): y[t, h * rows + r] = sum_c x[t, h, c] w_h[r, c],
// with x[t, h, :] at x + t * x_ld + h * x_head_stride and w_h's row r at w + h * w_head_stride +
// r * ldw (elements). rows a multiple of 64 (a CTA's rows stay in one head), m <= 4.
struct GemvHeadsParams {
  const __nv_bfloat16* x;
  const __nv_bfloat16* w;
  __nv_bfloat16* y;
  int64_t m, heads, rows, k;
  int64_t x_ld, x_head_stride, ldw, w_head_stride, ldy;
};
std::string bf16_gemv_heads_unsupported(const GemvHeadsParams& p);
void launch_bf16_gemv_heads(const GemvHeadsParams& p, const GemvConfig& cfg, cudaStream_t stream);

// Two BF16 GEMVs of the same x (a decode step's q and kv_a) in one launch: rows of a then rows of
// b. Needs both supported alone, the same x, ldx, m and k, a.n % 8 == 0, plain bf16 outputs.
std::string bf16_gemv_pair_unsupported(const GemmBf16Params& a, const GemmBf16Params& b);
void launch_bf16_gemv_pair(const GemmBf16Params& a, const GemmBf16Params& b, const GemvConfig& cfg,
                           cudaStream_t stream);

// An RMSNorm applied to a GEMV's input rows while they are staged: x[r] = bf16(bf16(src[r] *
// rsqrt(mean(src[r]^2) + eps)) * w), fp32 src [m][k] packed: launch_rms_norm's output bit for bit.
struct GemvRmsNorm {
  const float* src;
  const __nv_bfloat16* w;
  float eps;
};
// Why the fused norm cannot take these ("" = it can): null or unaligned pointers, k % 8 != 0 or
// k > 2048.
std::string gemv_rms_norm_unsupported(const GemvRmsNorm& n, int64_t k);
// launch_bf16_gemv_pair over norm's rows instead of a.x / b.x (ignored): the norm launch and the
// pair in one. Needs the pair's checks (with x = the norm's source) and the norm's.
void launch_bf16_gemv_pair_normed(const GemmBf16Params& a, const GemmBf16Params& b,
                                  const GemvRmsNorm& norm, const GemvConfig& cfg,
                                  cudaStream_t stream);

}  // namespace wideserve::cuda
