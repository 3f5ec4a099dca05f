// Dense GEMMs of the CUDA backend: BF16 (cuBLASLt) and DeepSeek-style FP8 block-scaled
// (cuBLASLt BLK128x128 weights x VEC128 activations, with an own fallback for shapes cuBLASLt gets
// wrong), plus the per-token 1x128 FP8 activation quantizer. Layouts: activations row-major
// [M, K]; weights row-major [N, K] (HF Linear); Y[M, N] = X[M, K] * W[N, K]^T.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace wideserve::cuda {

// Which implementation gemm_fp8_block runs.
enum class Fp8GemmPath : int {
  kAuto = 0,      // chosen by shape (select_fp8_block_path)
  kCublasLt = 1,  // cuBLASLt native block scaling (scales/rows staged to 16-byte strides if needed)
  kDequant = 2,   // own fallback: dequantize x and w to bf16 scratch, then gemm_bf16
  kSmallM = 3,    // own direct kernel for 1 <= m <= 16 (gemm_fp8_small_m.h): reads w once, no
                  // staging or scratch; needs k % 16 == 0 and 16-byte aligned x, w (throws
                  // kInvalidArgument otherwise). kAuto picks it where fp8_small_m_preferred.
  kGemv = 4,      // own tensor-core GEMV for 1 <= m <= 8 (gemm_gemv.h): weights straight to
                  // registers; needs k % 128 == 0. kAuto picks it where fp8_gemv_preferred.
};

// Candidates the model times per cuBLASLt plan by default (CudaModelOptions::gemm_autotune).
inline constexpr int kGemmAutotuneDefault = 0;

// One autotuned cuBLASLt plan (benchmarks print them): the heuristic's first algorithm against
// the fastest of its candidates, median microseconds with a cold L2.
struct GemmTuneRecord {
  bool fp8 = false;
  int64_t m = 0, n = 0, k = 0;
  int candidates = 0, chosen = 0;  // chosen: index in the heuristic's order
  float heuristic_us = 0, best_us = 0;
};

// cuBLASLt handle + workspace (32 MiB) + a cache of matmul plans keyed by shape; one per stream.
// Also owns the FP8 path's scratch (staged scales/rows, or the fallback's bf16 copies), grown on
// demand: call reserve_fp8_scratch for the largest shapes before capturing any CUDA graph (growing
// it while capturing is refused, and growing it later would free memory a captured graph uses).
class BlasContext {
 public:
  BlasContext();
  ~BlasContext();
  BlasContext(const BlasContext&) = delete;
  BlasContext& operator=(const BlasContext&) = delete;

  // Make the FP8 scratch large enough for gemm_fp8_block(m, n, k) on the path kAuto picks (or
  // the forced path); synchronizes the device when it grows.
  void reserve_fp8_scratch(int64_t m, int64_t n, int64_t k);
  // Tests/benchmarks: force one FP8 path for every call (kAuto = choose by shape).
  void set_fp8_path(Fp8GemmPath path) { fp8_path_ = path; }
  Fp8GemmPath fp8_path() const { return fp8_path_; }
  // Whether kAuto may pick the small-M kernel (benchmarks turn it off to compare).
  void set_fp8_small_m(bool on) { fp8_small_m_ = on; }
  bool fp8_small_m() const { return fp8_small_m_; }
  // Whether kAuto may pick the GEMV kernel (before the small-M one).
  void set_fp8_gemv(bool on) { fp8_gemv_ = on; }
  bool fp8_gemv() const { return fp8_gemv_; }
  // Whether gemm_bf16 may run the BF16 GEMV kernel where bf16_gemv_preferred.
  void set_bf16_gemv(bool on) { bf16_gemv_ = on; }
  bool bf16_gemv() const { return bf16_gemv_; }
  // Whether the last gemm_bf16 call ran the GEMV kernel (tests).
  bool last_bf16_gemv() const;
  // The path the last gemm_fp8_block call ran (a forced kCublasLt falls back to kDequant when
  // cuBLASLt offers no algorithm).
  Fp8GemmPath last_fp8_path() const;
  // Number of cached cuBLASLt plans (tests).
  size_t plan_count() const;
  // cuBLASLt algorithm choice: candidates <= 1 runs the heuristic's first algorithm; more times
  // that many of its candidates on each plan's first eager call and keeps the fastest. Applies to
  // plans built after the call.
  void set_gemm_autotune(int candidates);
  int gemm_autotune() const;
  // Every plan tuned so far, in order.
  const std::vector<GemmTuneRecord>& tune_records() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
  Fp8GemmPath fp8_path_ = Fp8GemmPath::kAuto;
  bool fp8_small_m_ = true;
  bool fp8_gemv_ = true;
  bool bf16_gemv_ = true;
};

struct GemmBf16Params {
  const __nv_bfloat16* x;  // [m, k], row stride ldx
  const __nv_bfloat16* w;  // [n, k], row stride ldw
  void* y;                 // [m, n], row stride ldy; bf16, or float when y_f32
  int64_t m, n, k;
  int64_t ldx = 0, ldw = 0, ldy = 0;  // 0 = packed (k, k, n)
  bool y_f32 = false;                 // fp32 output (router logits, lm head)
  float beta = 0.f;                   // y = x w^T + beta * y (beta=1: fused residual add)
  // fp32 y, beta != 0: y's old value is final before this launch starts (written two or more
  // launches back), so the GEMV path reads it before its wait (GemvConfig::y_early).
  bool y_final = false;
};
// y = x w^T (+ beta y); BF16 inputs, fp32 accumulation. m == 0 is a no-op. cuBLASLt, or the
// BF16 GEMV kernel (gemm_gemv.h) where bf16_gemv_preferred and its checks pass.
void gemm_bf16(BlasContext& ctx, const GemmBf16Params& p, cudaStream_t stream);
// Shapes where gemm_bf16 runs the GEMV kernel: m <= 4 and n <= 2048. On the H200 it beat
// cuBLASLt there (V2-Lite kv_a, o_proj, router: 4-6.5 vs 6.5-7.3 us) and lost on wider outputs
// (q 3072x2048: 8.0 vs 7.5 us; dense gate+up 21888x2048: 26.9 vs 25.3 us).
bool bf16_gemv_preferred(int64_t m, int64_t n, int64_t k);
// gemm_bf16(a) and gemm_bf16(b) of the same x: one GEMV launch for both where the BF16 GEMV is on
// and the pair qualifies (m <= 4, bf16_gemv_pair_unsupported empty), else the two calls.
void gemm_bf16_pair(BlasContext& ctx, const GemmBf16Params& a, const GemmBf16Params& b,
                    cudaStream_t stream);

struct GemmFp8BlockParams {
  const __nv_fp8_e4m3* x;  // [m, k] row-major, quantized per token in 1x128 groups
  const float* x_scale;    // [ceil(k/128)][m], m fastest (launch_quantize_fp8's layout)
  const __nv_fp8_e4m3* w;  // [n, k] row-major
  const float* w_scale;    // [ceil(n/128)][ceil(k/128)] row-major (checkpoint weight_scale_inv)
  __nv_bfloat16* y;        // [m, n] row-major, packed
  int64_t m, n, k;
  float beta = 0.f;  // y = x w^T + beta * y
  int64_t w_scale_ld =
      0;  // row stride of w_scale in floats; 0 = ceil(k/128). Storing the scales
          // with stride round_up(ceil(k/128), 4) spares cuBLASLt's per-call restage.
  // When set: residual[m, n] (fp32) += the bf16-rounded result. The GEMV adds it in its epilogue
  // and leaves y alone; the other paths write y, then add it.
  float* residual = nullptr;
};
// y = dequant(x) dequant(w)^T (+ beta y) with bf16 output. m == 0 is a no-op.
void gemm_fp8_block(BlasContext& ctx, const GemmFp8BlockParams& p, cudaStream_t stream);

// The cuBLASLt-or-fallback choice of kAuto for a shape: kCublasLt where our tests showed cuBLASLt
// correct, else kDequant (kAuto runs kSmallM before this where fp8_small_m_preferred).
Fp8GemmPath select_fp8_block_path(int64_t m, int64_t n, int64_t k);
// Shapes where the small-M kernel beat cuBLASLt on the H200 (docs/cuda_gemm.md): one row, or up
// to 16 rows of a narrow output (n <= 4096, where cuBLASLt fills few SMs).
bool fp8_small_m_preferred(int64_t m, int64_t n);
// Rows where kAuto runs the GEMV kernel (when its shape checks pass).
bool fp8_gemv_preferred(int64_t m, int64_t n);

struct QuantizeFp8Params {
  const __nv_bfloat16* x;        // [m, k], row stride ldx
  int64_t m, k, ldx = 0;         // ldx 0 = k
  __nv_fp8_e4m3* q;              // [m, k] packed
  float* scale;                  // [ceil(k/128)][m] (or [m][ceil(k/128)] when scale_row_major)
  bool scale_row_major = false;  // MoE grouped GEMM layout: [m][ceil(k/128)]
};
// Per token, per 128 columns: scale = max(amax, 1e-10) / 448, q = x / scale (e4m3, saturating).
void launch_quantize_fp8(const QuantizeFp8Params& p, cudaStream_t stream);

}  // namespace wideserve::cuda
