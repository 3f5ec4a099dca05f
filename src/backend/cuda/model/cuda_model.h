// The DeepSeek V2/V3 decoder on one GPU: the same step contract as the CPU model (sequences of new
// tokens over a paged latent KV cache -> logits), with bf16 activations, an fp32 residual stream,
// FP8 block-scaled or BF16 GEMMs, absorbed MLA over a bf16 latent cache and grouped-GEMM MoE.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/model/cuda_weights.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/sampling/sample_staging.h"
#include "model/forward_batch.h"
#include "model/model_config.h"

namespace wideserve::cuda {

struct StepMeta;

// Context-length buckets of decode CUDA graphs: 1024, 2048, ... below max_ctx, then max_ctx.
std::vector<int64_t> graph_context_buckets(int64_t max_ctx);

// Sizes fixed at start (they size the KV pool and every scratch buffer).
struct CudaModelOptions {
  int64_t num_pages = 0;             // KV pool pages (0 = from mem_fraction)
  int64_t page_size = 64;            // tokens per page
  int64_t max_step_tokens = 8192;    // tokens in one forward (chunked prefill size + decodes)
  int64_t max_seqs = 256;            // sequences in one forward
  double mem_fraction = 0.85;        // of the device's memory for weights + KV + scratch
  std::string load_format = "auto";  // auto | dummy
  bool dummy_fp8 = false;            // dummy weights in FP8 where shapes allow (always for an FP8
                                     // config's dummy weights)
  bool dequantize_fp8 = false;       // FP8 checkpoints: every tensor dequantized to bf16 (tests)
  uint64_t seed = 0;
  int64_t cuda_graph_max_bs = 0;  // decode steps up to this batch replay CUDA graphs (0 = off)
  // Kernel variants (benchmarks compare them; the defaults are the ones measured fastest).
  MlaDecodeKernel mla_decode = kMlaDecodeDefault;
  Fp8GemmPath fp8_path = Fp8GemmPath::kAuto;
  bool fp8_small_m = true;  // kAuto may run the small-M FP8 kernel (fp8_small_m_preferred)
  bool fp8_gemv = true;     // kAuto may run the FP8 GEMV kernel (fp8_gemv_preferred)
  bool bf16_gemv = true;    // gemm_bf16 may run the BF16 GEMV kernel (bf16_gemv_preferred)
  MoePath moe_path = kMoeDefaultPath;
  GroupedFp8Kernel moe_grouped_fp8 = GroupedFp8Kernel::kAuto;  // FP8 experts past the fused path
  bool moe_small = true;   // steps of <= kMoeSmallMaxTokens tokens run the fused MoE (moe_small.h)
  bool fuse_ops = true;    // RMSNorm + FP8 quantization, latent + query rope, FP8 GEMV + residual
  bool fuse_qkv_a = true;  // q_a and kv_a stacked into one GEMM (fuse_qkv_a; not bit-identical:
                           // the GEMM's algorithm may change with its width)
  bool pdl = true;         // programmatic dependent launch of our kernels (common/pdl.cuh)
  bool moe_shared_branch = true;  // fused small MoE: shared experts on a second stream beside
                                  // the routing (StepBuffers::set_shared_branch)
  bool moe_router_route = true;   // a few tokens: router GEMV + routing in one launch (moe.h)
  int gemm_autotune = kGemmAutotuneDefault;  // cuBLASLt candidates timed per plan (<= 1: off)
  bool norm_in_gemv = true;   // no q LoRA, BF16, <= 2 tokens: the input RMSNorm made by the
                              // q + kv_a GEMV pair (bit-identical; gemm_gemv.h GemvRmsNorm)
  bool mla_token = true;      // one-token decode steps: rope prep, absorb, attention and W_UV in
                              // one clustered launch where mla_token_preferred (mla_token.h)
  int mla_token_cluster = 0;  // its CTAs per cluster: 8, 16 or 0 (kMlaTokenDefaultCluster)
  bool mla_token_row_copies = false;  // MlaTokenParams::row_copies
  bool o_proj_early_residual = true;  // with the one launch: o_proj's GEMV reads h before its
                                      // wait (GemvConfig::y_early)
  // One token, BF16 experts: the post-attention RMSNorm made by the router + routing launch and
  // the fused up launch themselves (bit-identical), the shared experts as units of the up launch.
  bool moe_norm_inside = true;
  // Diagnostics (benchmarks): launch_mla_token's phase stamps, [layers][grid][kMlaTokenStamps].
  unsigned long long* mla_token_stamps = nullptr;
};

class CudaModel {
 public:
  // Reads config.json from model_dir; weights from its safetensors unless load_format is dummy.
  static std::unique_ptr<CudaModel> load(const std::string& model_dir, const CudaModelOptions& o);
  CudaModel(model::ModelConfig cfg, DevWeights w, const CudaModelOptions& o);
  ~CudaModel();

  const model::ModelConfig& config() const { return cfg_; }
  int64_t num_pages() const { return num_pages_; }
  int64_t page_size() const { return opts_.page_size; }
  size_t weight_bytes() const { return w_.bytes; }
  size_t kv_bytes() const;
  // The bf16 latent pool [layers][slots_per_layer()][kv_lora + rope].
  void* kv_data() const;
  // Cache rows per layer: the pool's pages plus one scratch page for graph padding rows.
  int64_t slots_per_layer() const;
  // Batch buckets of decode CUDA graphs and their fixed MLA split workspace (tests).
  const std::vector<int64_t>& graph_batch_buckets() const { return graph_buckets_; }
  size_t graph_workspace_bytes() const;
  // The cuBLASLt plans autotuned so far (benchmarks).
  const std::vector<GemmTuneRecord>& gemm_tune_records() const;

  // One step; logits [rows, vocab] fp32 on the host as DeepseekModel::forward returns them.
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits);
  // One step returning the greedy token of each logits row (argmax on the device).
  void forward_greedy(std::span<const model::SequenceInput> seqs, std::vector<int32_t>* ids);
  // Benchmarks: events on the stream around forward_greedy's staging, step and head (not the ids'
  // copy back and the host's wait for it); last_step_device_ms reads the last step's span.
  void set_step_timing(bool on);
  double last_step_device_ms() const;
  // One step, then launch_sample over its logits rows (one SamplingRowParams per row; never
  // inside a CUDA graph): ids per row (-1: nothing drawable) and, when asked, raw logprobs.
  void forward_sample(std::span<const model::SequenceInput> seqs, const SampleInputs& in,
                      std::vector<int32_t>* ids, std::vector<float>* logprobs);

  struct Impl;

 private:
  // Stages the step and runs the decoder up to the final norm; returns the logits row count.
  int64_t run(std::span<const model::SequenceInput> seqs);
  // The decoder over staged metadata. graph_ws: the fixed MLA workspace of a graph step (its
  // size checked against the plan's need), null for eager steps (their workspace grows on demand).
  void layers(const StepMeta& meta, const DeviceBuffer<uint8_t>* graph_ws);
  // LM head + argmax of the first m normalised rows into the ids buffer.
  void head_greedy(int64_t m);
  void setup_graphs();
  int64_t graph_bucket(int64_t n) const;
  // Runs a decode step through a captured graph (capturing it first); false if not eligible.
  bool graph_step(std::span<const model::SequenceInput> seqs);

  model::ModelConfig cfg_;
  CudaModelOptions opts_;
  DevWeights w_;
  int64_t num_pages_ = 0;
  std::vector<int64_t> graph_buckets_;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<SampleStaging> sampling_;  // forward_sample's device inputs
};

}  // namespace wideserve::cuda
