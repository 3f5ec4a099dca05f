// One decode token's MLA attention core in one clustered launch (batch 1, BF16 kv_b): what
// launch_mla_rope_prep, the absorbed-query GEMM, launch_mla_decode and the W_UV GEMV do for one
// token, with the cross-CTA steps inside thread block clusters instead of kernel boundaries.
// docs/cuda_mla.md, "One token in one launch".
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {

// Inputs of launch_mla_token. One cluster of 8 or 16 CTAs per pair of heads; each CTA owns its
// share of the absorbed query's columns, of the cache rows and of W_UV's rows. Rounding points
// are the separate kernels': roped q_pe, absorbed query, normed and roped latent, attention
// output and W_UV output are each rounded to bf16 once.
struct MlaTokenParams {
  const __nv_bfloat16* q = nullptr;          // [heads, q_stride]: q_nope | q_pe (not yet roped)
  const __nv_bfloat16* kv_a = nullptr;       // [512 + 64] the token's kv_a row (raw latent | k_pe)
  const __nv_bfloat16* kv_a_norm = nullptr;  // [512]
  const __nv_bfloat16* w_kv_b = nullptr;     // [heads][nope + v][512]: W_UK rows, then W_UV rows
  RopeTable rope{};
  const int32_t* position = nullptr;    // [1] it sees cache rows [0, min(position + 1, seq_len))
  const int32_t* slot = nullptr;        // [1] cache row its latent is stored to
  const int32_t* page_table = nullptr;  // the sequence's page ids
  const int32_t* seq_len = nullptr;     // [1] tokens in the cache, this one included
  __nv_bfloat16* kv_cache = nullptr;    // [slots, 576] of this layer
  __nv_bfloat16* out = nullptr;         // [heads * v]: the W_UV output o_proj reads
  int64_t heads = 0, q_stride = 0, nope = 0, v_dim = 0, page_size = 0, slots = 0;
  float eps = 1e-6f, softmax_scale = 1.f;
  int cluster = 0;  // CTAs per cluster: 8, 16 (non-portable), 0 = kMlaTokenDefaultCluster
  // Cache rows by one bulk copy per row even where page_size % 16 == 0 (which otherwise takes
  // tensor-map boxes of 16 rows into a swizzled ring).
  bool row_copies = false;
  // Diagnostics (benchmarks): [grid][kMlaTokenStamps] %globaltimer ns per CTA at its phase
  // boundaries (mla_token.cu names them); null in the model.
  unsigned long long* stamps = nullptr;
};
inline constexpr int kMlaTokenStamps = 24;  // 22 times, then clock64 at entry and exit
inline constexpr int kMlaTokenDefaultCluster = 8;

// Empty when launch_mla_token takes these shapes and pointers, else why not.
std::string mla_token_unsupported(const MlaTokenParams& p);

// Whether the model should run launch_mla_token for a one-token decode step of this many heads
// whose context is at most max_seq_len (each cluster reads the whole context).
bool mla_token_preferred(int64_t heads, int64_t max_seq_len);

// The token's attention core, one PDL launch of heads / 2 clusters of 8 or 16 CTAs.
void launch_mla_token(const MlaTokenParams& p, cudaStream_t stream);

// CTAs of launch_mla_token for these params (the stamps buffer holds this many rows per launch).
int mla_token_grid(const MlaTokenParams& p);

// Markdown table of the phase stamps of `launches` launches of `grid` CTAs each (stamps as
// downloaded, [launch][grid][kMlaTokenStamps]): mean and max over CTAs, us from each launch's
// first entry; launches with no stamps are skipped; the SM clock from the cycle stamps.
std::string mla_token_stamp_report(const std::vector<unsigned long long>& stamps, int64_t launches,
                                   int grid);

}  // namespace wideserve::cuda
