// gemm_bf16: y[m,n] = x[m,k] w[n,k]^T (+ beta y) through cuBLASLt. Row-major Y = X W^T is the
// column-major product Y^T = W X^T, so cuBLASLt sees A = w (transposed), B = x, D = y, with its
// (m, n, k) = (n, m, k).
#include <cublasLt.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/blas_context_impl.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_gemv.h"

namespace wideserve::cuda {
namespace {

void build_bf16_plan(BlasPlan& p, const PlanKey& key) {
  WS_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  WS_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  WS_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, key.k, key.n, key.ldw));
  WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, key.k, key.m, key.ldx));
  WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, key.y_f32 ? CUDA_R_32F : CUDA_R_16BF, key.n,
                                             key.m, key.ldy));
}

}  // namespace

bool bf16_gemv_preferred(int64_t m, int64_t n, int64_t k) {
  (void)k;
  return m >= 1 && m <= kBf16GemvMaxM && n <= 2048;
}

void gemm_bf16_pair(BlasContext& ctx, const GemmBf16Params& a, const GemmBf16Params& b,
                    cudaStream_t stream) {
  if (ctx.bf16_gemv() && a.m >= 1 && a.m <= kBf16GemvMaxM &&
      bf16_gemv_pair_unsupported(a, b).empty()) {
    launch_bf16_gemv_pair(a, b, GemvConfig{}, stream);
    ctx.impl().last_bf16_gemv = true;
    return;
  }
  gemm_bf16(ctx, a, stream);
  gemm_bf16(ctx, b, stream);
}

void gemm_bf16(BlasContext& ctx, const GemmBf16Params& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(p.m >= 0 && p.n > 0 && p.k > 0, "gemm_bf16: bad shape m=" + std::to_string(p.m) +
                                                      " n=" + std::to_string(p.n) +
                                                      " k=" + std::to_string(p.k));
  if (p.m == 0) return;
  const int64_t ldx = p.ldx == 0 ? p.k : p.ldx, ldw = p.ldw == 0 ? p.k : p.ldw,
                ldy = p.ldy == 0 ? p.n : p.ldy;
  WS_CUDA_REQUIRE(ldx >= p.k && ldw >= p.k && ldy >= p.n,
                  "gemm_bf16: leading dimensions ldx=" + std::to_string(ldx) +
                      " ldw=" + std::to_string(ldw) + " ldy=" + std::to_string(ldy) + " below k/n");
  WS_CUDA_REQUIRE(p.x != nullptr && p.w != nullptr && p.y != nullptr, "gemm_bf16: null pointer");
  ctx.impl().last_bf16_gemv = false;
  if (ctx.bf16_gemv() && bf16_gemv_preferred(p.m, p.n, p.k) && bf16_gemv_unsupported(p).empty()) {
    GemvConfig cfg;
    cfg.y_early = p.y_final && p.y_f32 && p.beta != 0.f;
    launch_bf16_gemv(p, cfg, stream);
    ctx.impl().last_bf16_gemv = true;
    return;
  }
  PlanKey key{PlanKind::kBf16,
              p.m,
              p.n,
              p.k,
              ldx,
              ldw,
              ldy,
              p.y_f32 ? 1 : 0,
              p.beta != 0.f ? 1 : 0,
              pointer_alignment(p.x),
              pointer_alignment(p.w),
              pointer_alignment(p.y)};
  auto& impl = ctx.impl();
  BlasPlan& plan = impl.plan(key, [&key](BlasPlan& bp) { build_bf16_plan(bp, key); });
  WS_CUDA_ASSERT(plan.has_algo,
                 "gemm_bf16: cuBLASLt has no algorithm for m=" + std::to_string(p.m) +
                     " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));
  const float alpha = 1.f, beta = p.beta;
  auto launch = [&](const cublasLtMatmulAlgo_t& algo, void* y) {
    return cublasLtMatmul(impl.handle, plan.desc, &alpha, p.w, plan.a, p.x, plan.b, &beta, y,
                          plan.c, y, plan.c, &algo, impl.workspace.get(), impl.workspace.bytes(),
                          stream);
  };
  impl.tune(plan, key, static_cast<size_t>(p.m * ldy) * (p.y_f32 ? 4 : 2), stream, launch);
  WS_CUBLAS_CHECK(launch(plan.algo, p.y));
}

}  // namespace wideserve::cuda
