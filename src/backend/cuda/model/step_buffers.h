// Scratch of the GPU model, sized once for the largest step: activations, MoE sorted rows, FP8
// quantization buffers, logits, and the step's metadata (token ids, positions, cache slots, page
// tables) staged through pinned memory. Also the layer building blocks that use them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_gemv.h"
#include "backend/cuda/model/cuda_weights.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/ops/ops.h"
#include "model/forward_batch.h"
#include "model/model_config.h"

namespace wideserve::cuda {

struct CudaModelOptions;

// Device pointers to one step's metadata (valid until the next stage()).
struct StepMeta {
  int64_t tokens = 0, seqs = 0, max_pages = 0, max_seq_len = 0, logit_rows = 0;
  bool decode_only = false;
  const int32_t* d_tokens = nullptr;
  const int32_t* d_positions = nullptr;
  const int32_t* d_slots = nullptr;
  const int32_t* d_token_seq = nullptr;
  const int32_t* d_seq_lens = nullptr;
  const int32_t* d_page_table = nullptr;  // [seqs][max_pages]
  const int32_t* d_logit_rows = nullptr;
};

class StepBuffers {
 public:
  StepBuffers() = default;
  ~StepBuffers();
  void allocate(const model::ModelConfig& c, const CudaModelOptions& o, int64_t logits_rows);

  // Checks the step (token ids, page tables) like the CPU model and copies its metadata.
  StepMeta stage(const model::ModelConfig& c, std::span<const model::SequenceInput> seqs,
                 int64_t page_size, int64_t num_pages, cudaStream_t st);
  // Decode step padded to `bucket` rows in a layout that depends only on the bucket (fixed device
  // addresses for a CUDA graph): padding rows decode token 0 into `dummy_page`, the page table has
  // the context bound's width, and max_seq_len is that bound.
  StepMeta stage_padded(const model::ModelConfig& c, std::span<const model::SequenceInput> seqs,
                        int64_t page_size, int64_t num_pages, int64_t bucket, int32_t dummy_page,
                        cudaStream_t st);
  int64_t max_pages() const { return max_pages_; }
  // Pinned host copy of `ids` (a device-to-host copy into pageable memory is staged and slower).
  int32_t* host_ids() const { return host_ids_; }

  // y[m, out] = x W^T (bf16 out), FP8 linears quantize x first, unless x_quantized says the last
  // norm(..., quantize = true) already left x's FP8 copy in the quantization buffers.
  void linear(BlasContext& blas, const DevLinear& l, const __nv_bfloat16* x, int64_t m,
              __nv_bfloat16* y, cudaStream_t st, bool x_quantized = false);
  // launch_rms_norm(p); with quantize, also p.out's FP8 copy for the next linear (fused when
  // fuse_ops is on). Returns whether that copy was made.
  bool norm(RmsNormParams p, bool quantize, cudaStream_t st);
  // h += x W^T into the fp32 residual stream. With deferred set and fuse_ops on, an FP8 linear
  // leaves its bf16 result in *deferred instead, for the next norm of h to add (RmsNormParams::
  // add: one launch and one pass over h fewer); *deferred is null when the add was made here.
  // h_final: h's writer is two or more launches back (a BF16 GEMV then reads h before its wait,
  // GemmBf16Params::y_final).
  void linear_residual(BlasContext& blas, const DevLinear& l, const __nv_bfloat16* x, int64_t m,
                       cudaStream_t st, bool x_quantized = false,
                       const __nv_bfloat16** deferred = nullptr, bool h_final = false);
  // SwiGLU MLP; out == null adds into the residual stream (deferred as in linear_residual).
  void mlp(BlasContext& blas, const DevLinear& gate_up, const DevLinear& down,
           const __nv_bfloat16* x, int64_t m, __nv_bfloat16* out, cudaStream_t st,
           bool x_quantized = false, const __nv_bfloat16** deferred = nullptr);
  // Routed (+ shared) experts of one layer, added into the residual stream.
  // norm (optional): x is to be RMSNorm(norm->src) * norm->w. At one token with BF16 experts the
  // router + routing launch and the up launch make it themselves (the shared experts then run as
  // units of the up launch, not on the branch: no norm launch between o_proj and the router);
  // elsewhere a norm launch writes it into x first.
  void moe(BlasContext& blas, const model::ModelConfig& c, const DevLayer& L, __nv_bfloat16* x,
           int64_t m, cudaStream_t st, const GemvRmsNorm* norm = nullptr);
  // MLA split-KV workspace of at least `bytes` (grown outside graph capture).
  void* mla_workspace(size_t bytes);
  // Lets moe() run a small step's shared experts on `stream` (with its own BLAS context, whose
  // cuBLASLt workspace the main stream never uses meanwhile) beside the router, routing and the
  // routed up launch, joined before the down launch. Null stream: inline, as units of the fused
  // launches.
  void set_shared_branch(cudaStream_t stream, BlasContext* blas);

  DeviceBuffer<float> h, logits;
  DeviceBuffer<__nv_bfloat16> xn, qa, qa_n, q, kva, q_abs, o_lat, attn, tmp, gu, act;
  DeviceBuffer<int32_t> ids;
  size_t bytes = 0;

 private:
  int64_t max_tokens_ = 0, max_seqs_ = 0, max_pages_ = 0, max_k_ = 0, top_k_ = 0, experts_ = 0;
  MoePath moe_path_ = kMoeDefaultPath;
  GroupedFp8Kernel grouped_fp8_ = GroupedFp8Kernel::kAuto;
  bool moe_small_ = true;
  bool router_route_ = true;
  bool fuse_ops_ = true;
  cudaStream_t branch_stream_ = nullptr;
  BlasContext* branch_blas_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  // An FP8 linear's GEMM operands: x quantized into xq_/xs_ (unless x_quantized), output y.
  GemmFp8BlockParams fp8_operands(const DevLinear& l, const __nv_bfloat16* x, int64_t m,
                                  __nv_bfloat16* y, bool x_quantized, cudaStream_t st);
  DeviceBuffer<__nv_fp8_e4m3> xq_;
  DeviceBuffer<float> xs_;
  // MoE
  DeviceBuffer<float> router_logits_, topk_w_, sorted_scales_, act_scales_, small_act_;
  DeviceBuffer<int32_t> topk_ids_, counts_, offsets_, sorted_to_slot_, slot_to_sorted_;
  DeviceBuffer<uint8_t> align_ws_, gg_ws_, mla_ws_;
  DeviceBuffer<__nv_bfloat16> sorted_, gu_sorted_, act_sorted_, y_sorted_, shared_out_;
  DeviceBuffer<__nv_fp8_e4m3> sorted_q_, act_sorted_q_;
  // Metadata staging.
  int32_t* host_meta_ = nullptr;
  int32_t* host_ids_ = nullptr;
  DeviceBuffer<int32_t> meta_;
  int64_t meta_cap_ = 0;
};

}  // namespace wideserve::cuda
