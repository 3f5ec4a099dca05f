// Row-wise kernels of the GPU model: embedding, RMSNorm (with the fp32 residual stream), MLA query
// and latent preparation (norm + rope + cache store), SwiGLU, greedy argmax and random init.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace wideserve::cuda {

// out[t] = table[ids[t]] (bf16 rows of dim); residual[t] = same row in fp32 when not null.
struct EmbeddingParams {
  const int32_t* ids;
  const __nv_bfloat16* table;  // [vocab, dim]
  __nv_bfloat16* out;          // [tokens, dim] or null
  float* residual;             // [tokens, dim] or null
  int64_t tokens, dim, vocab;
};
void launch_embedding(const EmbeddingParams& p, cudaStream_t stream);

// out[r] = x[r] / rms(x[r]) * w over the first `dim` columns; x is fp32 (the residual stream) or
// bf16 (x_bf16), strides in elements. With q set, out is also quantized as launch_quantize_fp8
// would quantize it (q [rows, dim] packed, q_scale [dim/128][rows]), in the same launch when the
// shape allows (dim % 128 == 0, aligned rows).
struct RmsNormParams {
  const int32_t* row_index = nullptr;  // optional: output row r normalises input row row_index[r]
  const float* x = nullptr;
  const __nv_bfloat16* x_bf16 = nullptr;
  const __nv_bfloat16* w;
  __nv_bfloat16* out;
  int64_t rows, dim, x_stride, out_stride;
  float eps;
  __nv_fp8_e4m3* q = nullptr;  // optional FP8 copy of out
  float* q_scale = nullptr;
  // Optional residual update first (fp32 x only): x[row] += add[row] (bf16 [*, dim] packed, the
  // row x's), written back to x, as launch_add_residual adds; then the sum is normalised. With
  // row_index, only the indexed rows are updated (they must be distinct).
  const __nv_bfloat16* add = nullptr;
};
void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream);

// Rotary tables: inv_freq [rope_dim/2] and the YaRN attention factor of the model.
struct RopeTable {
  const float* inv_freq;
  int64_t rope_dim;
  float attention_factor;
};

// Latent rows: kv_a output [tokens, kv_lora + rope] (bf16) -> RMSNorm of the first kv_lora columns
// (weight norm_w), rope of the last rope_dim columns at positions[t], stored into the cache row
// slot_mapping[t] of kv_cache [slots, kv_lora + rope]. Rope output layout: rotated evens then
// rotated odds (the CPU backend's layout; dot products equal HF's).
struct LatentPrepParams {
  const __nv_bfloat16* kv_a;
  const __nv_bfloat16* norm_w;
  const int32_t* positions;
  const int32_t* slot_mapping;
  __nv_bfloat16* kv_cache;
  RopeTable rope;
  int64_t tokens, kv_lora, slots;
  float eps;
  int64_t kv_a_stride = 0;  // elements between tokens' kv_a rows (0 = kv_lora + rope: packed)
};
void launch_latent_prep(const LatentPrepParams& p, cudaStream_t stream);

// Query rope: q [tokens, heads, q_stride] with the rope part at column nope..nope+rope_dim ->
// out [tokens, heads, out_stride] at column out_col (the absorbed query's tail).
struct QueryRopeParams {
  const __nv_bfloat16* q;
  __nv_bfloat16* out;
  const int32_t* positions;
  RopeTable rope;
  int64_t tokens, heads, q_stride, nope, out_stride, out_col;
};
void launch_query_rope(const QueryRopeParams& p, cudaStream_t stream);

// launch_latent_prep(lp) and launch_query_rope(qp) of the same tokens in one launch, with the
// same results: one CTA per (token, 32 heads) plus one per token storing the latent row; the rope
// angles of a token are computed once and shared by its heads.
void launch_mla_rope_prep(const LatentPrepParams& lp, const QueryRopeParams& qp,
                          cudaStream_t stream);

// out[r, i] = silu(x[r, i]) * x[r, inter + i], bf16 in and out. With q set, also the FP8 copy
// of out that launch_quantize_fp8 makes (q [rows, inter], q_scale [inter / 128][rows]).
struct SiluMulParams {
  const __nv_bfloat16* x;
  __nv_bfloat16* out;
  int64_t rows, inter;
  __nv_fp8_e4m3* q = nullptr;
  float* q_scale = nullptr;
};
void launch_silu_mul(const SiluMulParams& p, cudaStream_t stream);
// Whether launch_silu_mul can write the FP8 copy for these shapes and buffers.
bool silu_mul_fp8_supported(const SiluMulParams& p);

// residual[r] += x[r] (bf16 -> fp32 stream), rows of dim.
struct AddResidualParams {
  const __nv_bfloat16* x;
  float* residual;
  int64_t rows, dim;
};
void launch_add_residual(const AddResidualParams& p, cudaStream_t stream);

// ids[r] = argmax over logits[r, :vocab] (first index on ties; NaN never wins; an all-NaN row
// gives 0), fp32 logits. With a workspace (argmax_workspace_bytes(rows), zeroed before its first
// use; every launch leaves it reusable), a few rows are split over several CTAs each.
struct ArgmaxParams {
  const float* logits;
  int32_t* ids;
  int64_t rows, vocab;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
void launch_argmax(const ArgmaxParams& p, cudaStream_t stream);
// Workspace bytes launch_argmax's split path needs for up to `rows` rows.
size_t argmax_workspace_bytes(int64_t rows);

// Fills n bf16 values with uniform(-scale, scale) from a counter-based hash of (seed, index):
// dummy weights for benchmarks (--load-format dummy).
void launch_fill_random_bf16(__nv_bfloat16* out, int64_t n, uint64_t seed, float scale,
                             cudaStream_t stream);
// Same for raw bytes of FP8 e4m3 weights (uniform in (-scale, scale)) and fp32 values in (lo, hi).
void launch_fill_random_fp8(void* out, int64_t n, uint64_t seed, float scale, cudaStream_t stream);
void launch_fill_random_f32(float* out, int64_t n, uint64_t seed, float lo, float hi,
                            cudaStream_t stream);

}  // namespace wideserve::cuda
