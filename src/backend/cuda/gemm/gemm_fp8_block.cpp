// gemm_fp8_block: DeepSeek FP8 (128x128 weight blocks, 1x128 activation groups) with bf16 output.
// cuBLASLt runs the scheme natively (A = w with BLK128x128_32F scales, B = x with VEC128_32F
// scales, transa=T, transb=N); shapes where it is wrong or unsupported take the dequantize-to-bf16
// fallback. docs/cuda_gemm.md lists the measured cases behind select_fp8_block_path.
#include <cublasLt.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/blas_context_impl.h"
#include "backend/cuda/gemm/fp8_convert.h"
#include "backend/cuda/gemm/gemm.h"

namespace wideserve::cuda {
namespace {

void build_fp8_plan(BlasPlan& p, const PlanKey& key, const float* w_scale, const float* x_scale) {
  WS_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  auto set = [&p](cublasLtMatmulDescAttributes_t attr, const void* v, size_t size) {
    WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, attr, v, size));
  };
  set(CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
  set(CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
  const int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  const int32_t b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &a_mode, sizeof(a_mode));
  set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &b_mode, sizeof(b_mode));
  set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof(w_scale));
  set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof(x_scale));
  WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, key.k, key.n, key.k));
  WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, key.k, key.m, key.k));
  WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, key.n, key.m, key.n));
}

// Returns false when cuBLASLt offers no algorithm (the caller falls back).
bool run_cublaslt(BlasContext& ctx, const GemmFp8BlockParams& p, cudaStream_t stream) {
  PlanKey key{PlanKind::kFp8Block,
              p.m,
              p.n,
              p.k,
              p.k,
              p.k,
              p.n,
              0,
              p.beta != 0.f ? 1 : 0,
              pointer_alignment(p.x),
              pointer_alignment(p.w),
              pointer_alignment(p.y)};
  auto& impl = ctx.impl();
  BlasPlan& plan =
      impl.plan(key, [&key, &p](BlasPlan& bp) { build_fp8_plan(bp, key, p.w_scale, p.x_scale); });
  if (!plan.has_algo) return false;
  WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                 &p.w_scale, sizeof(p.w_scale)));
  WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                 &p.x_scale, sizeof(p.x_scale)));
  const float alpha = 1.f, beta = p.beta;
  const cublasStatus_t st =
      cublasLtMatmul(impl.handle, plan.desc, &alpha, p.w, plan.a, p.x, plan.b, &beta, p.y, plan.c,
                     p.y, plan.c, &plan.algo, impl.workspace.get(), impl.workspace.bytes(), stream);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) {  // rejected at launch: never try this plan again
    plan.has_algo = false;
    return false;
  }
  WS_CUBLAS_CHECK(st);
  return true;
}

void run_dequant(BlasContext& ctx, const GemmFp8BlockParams& p, cudaStream_t stream) {
  auto& impl = ctx.impl();
  const auto need_x = static_cast<size_t>(p.m * p.k), need_w = static_cast<size_t>(p.n * p.k);
  if (impl.scratch_x.size() < need_x || impl.scratch_w.size() < need_w) {
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    WS_CUDA_CHECK(cudaStreamIsCapturing(stream, &cap));
    WS_CUDA_REQUIRE(cap == cudaStreamCaptureStatusNone,
                    "gemm_fp8_block: fallback scratch too small during graph capture; call "
                    "BlasContext::reserve_fp8_scratch(" +
                        std::to_string(p.m) + ", " + std::to_string(p.n) + ", " +
                        std::to_string(p.k) + ") first");
    ctx.reserve_fp8_scratch(p.m, p.n, p.k);
  }
  launch_dequant_fp8({p.x, p.x_scale, p.m, p.k, false, impl.scratch_x.get()}, stream);
  launch_dequant_fp8({p.w, p.w_scale, p.n, p.k, true, impl.scratch_w.get()}, stream);
  GemmBf16Params g{impl.scratch_x.get(), impl.scratch_w.get(), p.y, p.m, p.n, p.k};
  g.beta = p.beta;
  gemm_bf16(ctx, g, stream);
}

}  // namespace

Fp8GemmPath select_fp8_block_path(int64_t m, int64_t n, int64_t k) {
  (void)m;
  // cuBLASLt's FP8 kernels need k % 16 == 0; the BRIEF measured wrong results at k = 384.
  if (k % 128 != 0 || n % 128 != 0) return Fp8GemmPath::kDequant;
  if (k == 384) return Fp8GemmPath::kDequant;
  return Fp8GemmPath::kCublasLt;
}

void gemm_fp8_block(BlasContext& ctx, const GemmFp8BlockParams& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(p.m >= 0 && p.n > 0 && p.k > 0,
                  "gemm_fp8_block: bad shape m=" + std::to_string(p.m) +
                      " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));
  if (p.m == 0) return;
  WS_CUDA_REQUIRE(p.x != nullptr && p.x_scale != nullptr && p.w != nullptr &&
                      p.w_scale != nullptr && p.y != nullptr,
                  "gemm_fp8_block: null pointer");
  Fp8GemmPath path = ctx.fp8_path();
  if (path == Fp8GemmPath::kAuto) path = select_fp8_block_path(p.m, p.n, p.k);
  if (path == Fp8GemmPath::kCublasLt && p.k % 16 == 0 && run_cublaslt(ctx, p, stream)) {
    ctx.impl().last_fp8_path = Fp8GemmPath::kCublasLt;
    return;
  }
  run_dequant(ctx, p, stream);
  ctx.impl().last_fp8_path = Fp8GemmPath::kDequant;
}

}  // namespace wideserve::cuda
