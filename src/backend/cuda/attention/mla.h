// Absorbed multi-head latent attention (DeepSeek MLA) over a paged latent KV cache on the GPU.
// Every cache row is 576 bf16: 512 normalised c_kv (also the value) | 64 roped k_pe. Queries are
// absorbed (q_nope · W_UK | roped q_pe, 576 wide); outputs stay in the 512-wide latent space (the
// runner applies W_UV afterwards). Launchers validate shapes, never sync or allocate, and are
// CUDA-graph capturable: the split-KV plan depends only on host-known values.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace wideserve::cuda {

inline constexpr int64_t kMlaLatentDim = 512;  // c_kv width = value width = output width
inline constexpr int64_t kMlaRopeDim = 64;     // k_pe / q_pe width
inline constexpr int64_t kMlaRowDim = 576;     // one cache row / one absorbed query head

// Queries of a batch attend to their sequence's paged latent cache (absorbed MLA).
struct MlaAttentionParams {
  const __nv_bfloat16* q;         // [num_tokens, num_heads, 576]
  const __nv_bfloat16* kv_cache;  // [num_slots, 576] of this layer
  const int32_t* page_table;      // [num_seqs, max_pages_per_seq] page ids
  const int32_t* seq_lens;        // [num_seqs] tokens in the cache (incl. this step's tokens)
  const int32_t* token_seq;       // [num_tokens] which sequence each query token belongs to
  const int32_t* token_pos;       // [num_tokens] absolute position: token sees cache [0, pos]
  __nv_bfloat16* out;             // [num_tokens, num_heads, 512]
  float* lse = nullptr;           // optional [num_tokens, num_heads], natural log of sum exp(score)
  int64_t num_tokens = 0, num_seqs = 0, num_heads = 0, max_pages_per_seq = 0, page_size = 0;
  float softmax_scale = 1.0f;
  int64_t max_seq_len = 0;    // host-known bound for the split plan (decode graphs pass capacity)
  void* workspace = nullptr;  // split-KV partials, >= mla_workspace_bytes(...)
  size_t workspace_bytes = 0;
};

// Workspace the decode/prefill launchers need for these host-known sizes (0 if no split).
size_t mla_workspace_bytes(int64_t num_tokens, int64_t num_heads, int64_t max_seq_len);

// One query token per sequence (token t may still name any sequence; it sees [0, token_pos[t]]).
void launch_mla_decode(const MlaAttentionParams& p, cudaStream_t s);

// Decode kernel of the three-argument launch_mla_decode: kV3 = mla_fwd_kernel (what the
// two-argument form runs), kV4 = warp-specialised decode kernel (docs/cuda_mla.md, "v4"), kV5 =
// the wgmma kernel where heads are a multiple of 64 and tokens x heads / 64 >= 32, else v4 ("v5"),
// kV6 = v5 with the query in registers and TMA tile loads where pages hold a multiple of 32
// rows, else what kV5 runs ("v6").
enum class MlaDecodeKernel : int { kV3 = 0, kV4 = 1, kV5 = 2, kV6 = 3 };
// What the model runs unless told otherwise.
inline constexpr MlaDecodeKernel kMlaDecodeDefault = MlaDecodeKernel::kV6;

// Decode through the chosen kernel: same params, workspace (mla_workspace_bytes), outputs.
void launch_mla_decode(const MlaAttentionParams& p, cudaStream_t s, MlaDecodeKernel kernel);

// Many tokens per sequence, causal, over prefix cache + this chunk (positions start at prefix len).
void launch_mla_prefill(const MlaAttentionParams& p, cudaStream_t s);

// Writes rows [num_tokens, 576] into the cache at slots slot_mapping[num_tokens] (slot < 0: skip).
struct KvStoreParams {
  const __nv_bfloat16* rows;
  const int32_t* slot_mapping;
  __nv_bfloat16* kv_cache;
  int64_t num_tokens = 0;
  int64_t num_slots = 0;
};
void launch_mla_kv_store(const KvStoreParams& p, cudaStream_t s);

}  // namespace wideserve::cuda
