// Direct FP8 block-scaled GEMM for decode-sized batches (1 <= m <= 16): reads w once with 16-byte
// cp.async into a 4-stage shared-memory ring, e4m3 mma.sync (m16n8k32, x rows padded to 16 with
// zeros), one fp32 partial per 128-column k block scaled by x_scale * w_scale when the block ends.
// Split-K runs across the warps of a CTA and across the CTAs of a thread-block cluster, reduced in
// a fixed order through (distributed) shared memory: deterministic, no workspace, no atomics, one
// launch, graph-capturable. Same operand contract as GemmFp8BlockParams. Design and numbers:
// docs/cuda_gemm.md "Small-M kernel".
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/cuda/gemm/gemm.h"

namespace wideserve::cuda {

inline constexpr int64_t kFp8SmallMMaxM = 16;

// Work split: a CTA is 8 warps of 16 weight rows each, warps_n of them along n (the CTA covers
// 16 * warps_n rows) and 8 / warps_n along k; cluster_k CTAs of one cluster split k further.
struct Fp8SmallMConfig {
  int warps_n = 0;    // 1, 2, 4 or 8; 0 = by shape (plan_fp8_small_m)
  int cluster_k = 0;  // 1..8; 0 = by shape
};

// The split used for a shape on a device with sm_count SMs: wide CTAs first, then cluster split-K,
// then narrower CTAs, until there are at least sm_count CTAs (or k runs out of 128-blocks).
Fp8SmallMConfig plan_fp8_small_m(int64_t m, int64_t n, int64_t k, int sm_count);

// Why the kernel cannot run p ("" = it can): m outside 1..16, k % 16 != 0, x or w not 16-byte
// aligned, null pointers, w_scale_ld < ceil(k/128).
std::string fp8_small_m_unsupported(const GemmFp8BlockParams& p);

// y = x w^T (+ beta y), bf16 out. Throws kInvalidArgument when fp8_small_m_unsupported(p) is not
// empty or cfg holds warps_n other than 0, 1, 2, 4, 8 or cluster_k outside 0..8.
void launch_fp8_small_m(const GemmFp8BlockParams& p, const Fp8SmallMConfig& cfg,
                        cudaStream_t stream);

}  // namespace wideserve::cuda
