// Absorbed MLA attention for any latent/rope width (tiny test models): one block per (token,
// head), warps stream the sequence's cached rows with an online softmax. Correct, not fast; the
// tuned kernels in backend/cuda/attention serve the real 512 + 64 layout.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace wideserve::cuda {

struct MlaSimpleParams {
  const __nv_bfloat16* q;         // [tokens, heads, latent + rope]
  const __nv_bfloat16* kv_cache;  // [slots, latent + rope]
  const int32_t* page_table;      // [seqs, max_pages]
  const int32_t* token_seq;       // [tokens]
  const int32_t* token_pos;       // [tokens]: sees cache positions [0, pos]
  __nv_bfloat16* out;             // [tokens, heads, latent]
  int64_t tokens, heads, latent, rope, max_pages, page_size;
  float softmax_scale;
};
// latent <= 512.
void launch_mla_simple(const MlaSimpleParams& p, cudaStream_t stream);

}  // namespace wideserve::cuda
