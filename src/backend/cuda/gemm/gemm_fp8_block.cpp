// gemm_fp8_block: DeepSeek FP8 (128x128 weight blocks, 1x128 activation groups) with bf16 output.
// cuBLASLt runs the scheme natively (A = w with BLK128x128_32F scales, B = x with VEC128_32F
// scales, transa=T, transb=N). Measured on CUDA 13 / cuBLASLt 13.1 (docs/cuda_gemm.md): it reads
// w_scale with a row stride of ceil(k/128) rounded up to 4 floats, so any other stride (the
// checkpoint's, whenever ceil(k/128) % 4 != 0) gives wrong results unless w_scale is restaged, and
// it offers no algorithm for m % 4 != 0, so such calls run on m rounded up to 4 (x rows, x_scale
// and y staged). Shapes with k % 128 != 0 take the dequantize-to-bf16 fallback.
#include <cublasLt.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/blas_context_impl.h"
#include "backend/cuda/gemm/fp8_convert.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_fp8_small_m.h"
#include "backend/cuda/gemm/gemm_gemv.h"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

int64_t round_up(int64_t v, int64_t to) {
  return (v + to - 1) / to * to;
}
size_t align256(size_t v) {
  return (v + 255) / 256 * 256;
}

// The scale pointers must be set before the heuristic query (it rejects block scaling without
// them); each call sets its own again.
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

void copy_async(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes > 0) WS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

// Returns false when cuBLASLt offers no algorithm or rejects the call (the caller falls back).
bool run_cublaslt(BlasContext& ctx, const GemmFp8BlockParams& p, cudaStream_t stream) {
  auto& impl = ctx.impl();
  const Fp8Stage st = plan_fp8_stage(p);
  if (st.bytes > 0) ensure_scratch(impl.stage, st.bytes, stream);
  char* base = impl.stage.get();
  const float* w_scale = st.stage_w ? reinterpret_cast<float*>(base + st.off_ws) : p.w_scale;
  const float* x_scale = st.stage_xs ? reinterpret_cast<float*>(base + st.off_xs) : p.x_scale;
  const __nv_fp8_e4m3* x = st.pad_m ? reinterpret_cast<__nv_fp8_e4m3*>(base + st.off_x) : p.x;
  __nv_bfloat16* y = st.pad_m ? reinterpret_cast<__nv_bfloat16*>(base + st.off_y) : p.y;
  const int64_t m = st.m4;

  PlanKey key{PlanKind::kFp8Block,
              m,
              p.n,
              p.k,
              p.k,
              p.k,
              p.n,
              0,
              p.beta != 0.f ? 1 : 0,
              pointer_alignment(x),
              pointer_alignment(p.w),
              pointer_alignment(y)};
  BlasPlan& plan = impl.plan(key, [&](BlasPlan& bp) { build_fp8_plan(bp, key, w_scale, x_scale); });
  if (!plan.has_algo) return false;

  if (st.stage_w)  // [nb][w_ld] -> [nb][kb4]
    WS_CUDA_CHECK(cudaMemcpy2DAsync(const_cast<float*>(w_scale), st.kb4 * sizeof(float), p.w_scale,
                                    st.w_ld * sizeof(float), st.kb * sizeof(float), st.nb,
                                    cudaMemcpyDeviceToDevice, stream));
  if (st.stage_xs) {  // [kb][m] -> [kb][m4]; padded rows get scale 0 (their outputs are dropped)
    if (st.pad_m)
      WS_CUDA_CHECK(
          cudaMemsetAsync(const_cast<float*>(x_scale), 0, st.kb * st.m4 * sizeof(float), stream));
    WS_CUDA_CHECK(cudaMemcpy2DAsync(const_cast<float*>(x_scale), st.m4 * sizeof(float), p.x_scale,
                                    p.m * sizeof(float), p.m * sizeof(float), st.kb,
                                    cudaMemcpyDeviceToDevice, stream));
  }
  if (st.pad_m) {
    auto* xs = const_cast<__nv_fp8_e4m3*>(x);
    copy_async(xs, p.x, static_cast<size_t>(p.m * p.k), stream);
    WS_CUDA_CHECK(cudaMemsetAsync(xs + p.m * p.k, 0, static_cast<size_t>((m - p.m) * p.k), stream));
    if (p.beta != 0.f) copy_async(y, p.y, static_cast<size_t>(p.m * p.n) * 2, stream);
  }
  WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                 &w_scale, sizeof(w_scale)));
  WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                 &x_scale, sizeof(x_scale)));
  const float alpha = 1.f, beta = p.beta;
  auto launch = [&](const cublasLtMatmulAlgo_t& algo, void* out) {
    return cublasLtMatmul(impl.handle, plan.desc, &alpha, p.w, plan.a, x, plan.b, &beta, out,
                          plan.c, out, plan.c, &algo, impl.workspace.get(), impl.workspace.bytes(),
                          stream);
  };
  impl.tune(plan, key, static_cast<size_t>(m * p.n) * 2, stream, launch);
  const cublasStatus_t status = launch(plan.algo, y);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) {  // rejected at launch: never try this plan again
    plan.has_algo = false;
    return false;
  }
  WS_CUBLAS_CHECK(status);
  if (st.pad_m) copy_async(p.y, y, static_cast<size_t>(p.m * p.n) * 2, stream);
  return true;
}

void run_dequant(BlasContext& ctx, const GemmFp8BlockParams& p, cudaStream_t stream) {
  auto& impl = ctx.impl();
  ensure_scratch(impl.scratch_x, static_cast<size_t>(p.m * p.k), stream);
  ensure_scratch(impl.scratch_w, static_cast<size_t>(p.n * p.k), stream);
  const int64_t w_ld = p.w_scale_ld != 0 ? p.w_scale_ld : (p.k + 127) / 128;
  launch_dequant_fp8({p.x, p.x_scale, p.m, p.k, p.m, false, impl.scratch_x.get()}, stream);
  launch_dequant_fp8({p.w, p.w_scale, p.n, p.k, w_ld, true, impl.scratch_w.get()}, stream);
  GemmBf16Params g{impl.scratch_x.get(), impl.scratch_w.get(), p.y, p.m, p.n, p.k};
  g.beta = p.beta;
  gemm_bf16(ctx, g, stream);
}

}  // namespace

Fp8Stage plan_fp8_stage(const GemmFp8BlockParams& p) {
  Fp8Stage s{};
  s.m4 = round_up(p.m, 4);
  s.kb = (p.k + 127) / 128;
  s.kb4 = round_up(s.kb, 4);
  s.nb = (p.n + 127) / 128;
  s.w_ld = p.w_scale_ld != 0 ? p.w_scale_ld : s.kb;
  s.pad_m = s.m4 != p.m;
  // cuBLASLt derives the w_scale row stride itself (ceil(k/128) rounded up to 4); any other stride
  // is restaged (device run 3: w_scale_ld 20 with 16 k blocks read the padding).
  s.stage_w = s.w_ld != s.kb4 || pointer_alignment(p.w_scale) < 16;
  s.stage_xs = s.pad_m || pointer_alignment(p.x_scale) < 16;
  size_t off = 0;
  s.off_ws = off;
  if (s.stage_w) off += align256(static_cast<size_t>(s.nb * s.kb4) * sizeof(float));
  s.off_xs = off;
  if (s.stage_xs) off += align256(static_cast<size_t>(s.kb * s.m4) * sizeof(float));
  s.off_x = off;
  if (s.pad_m) off += align256(static_cast<size_t>(s.m4 * p.k));
  s.off_y = off;
  if (s.pad_m) off += align256(static_cast<size_t>(s.m4 * p.n) * 2);
  s.bytes = off;
  return s;
}

bool fp8_small_m_preferred(int64_t m, int64_t n) {
  return m == 1 || (m >= 1 && m <= 16 && n <= 4096);
}

bool fp8_gemv_preferred(int64_t m, int64_t n) {
  (void)n;
  return m >= 1 && m <= 4;
}

Fp8GemmPath select_fp8_block_path(int64_t m, int64_t n, int64_t k) {
  (void)m;
  (void)n;
  // cuBLASLt's block-scaled kernels need whole 128-column k blocks; everything else is staged.
  return k % 128 == 0 ? Fp8GemmPath::kCublasLt : Fp8GemmPath::kDequant;
}

void gemm_fp8_block(BlasContext& ctx, const GemmFp8BlockParams& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(p.m >= 0 && p.n > 0 && p.k > 0,
                  "gemm_fp8_block: bad shape m=" + std::to_string(p.m) +
                      " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));
  if (p.m == 0) return;
  WS_CUDA_REQUIRE(p.x != nullptr && p.x_scale != nullptr && p.w != nullptr &&
                      p.w_scale != nullptr && p.y != nullptr,
                  "gemm_fp8_block: null pointer");
  WS_CUDA_REQUIRE(p.w_scale_ld == 0 || p.w_scale_ld >= (p.k + 127) / 128,
                  "gemm_fp8_block: w_scale_ld " + std::to_string(p.w_scale_ld) + " < ceil(k/128)");
  Fp8GemmPath path = ctx.fp8_path();
  if (path == Fp8GemmPath::kAuto)
    path =
        ctx.fp8_gemv() && fp8_gemv_preferred(p.m, p.n) && fp8_gemv_unsupported(p).empty()
            ? Fp8GemmPath::kGemv
        : ctx.fp8_small_m() && fp8_small_m_preferred(p.m, p.n) && fp8_small_m_unsupported(p).empty()
            ? Fp8GemmPath::kSmallM
            : select_fp8_block_path(p.m, p.n, p.k);
  if (path == Fp8GemmPath::kGemv) {  // no fallback: unsupported shapes throw with the reason
    launch_fp8_gemv(p, GemvConfig{}, stream);
    ctx.impl().last_fp8_path = Fp8GemmPath::kGemv;
    return;
  }
  if (path == Fp8GemmPath::kSmallM) {  // no fallback: unsupported shapes throw with the reason
    launch_fp8_small_m(p, Fp8SmallMConfig{}, stream);
    ctx.impl().last_fp8_path = Fp8GemmPath::kSmallM;
  } else if (path == Fp8GemmPath::kCublasLt && p.k % 16 == 0 && run_cublaslt(ctx, p, stream)) {
    ctx.impl().last_fp8_path = Fp8GemmPath::kCublasLt;
  } else {
    run_dequant(ctx, p, stream);
    ctx.impl().last_fp8_path = Fp8GemmPath::kDequant;
  }
  if (p.residual != nullptr) launch_add_residual({p.y, p.residual, p.m, p.n}, stream);
}

}  // namespace wideserve::cuda
