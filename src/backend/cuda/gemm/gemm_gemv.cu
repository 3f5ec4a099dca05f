// Decode GEMVs on tensor cores (gemm_gemv.h), FP8 block-scaled and BF16, one kernel template.
// - Warp = 8 weight rows x one k slice. Lane (g, t) = (lane / 4, lane % 4) loads 16 bytes of row
//   g at byte c*64 + t*16 of every 64-byte k chunk c and the same 16 bytes of x row g (token g)
//   from shared memory; mma_e4m3_chunk64 / mma_bf16_chunk64 (mma_ptx.cuh) turn them into the
//   exact dot products over the chunk with k permuted alike in A and B. Rows g + 8 of A are zero.
// - A 128-wide k block is 2 (FP8) or 4 (BF16) chunks; FP8 partials take x_scale * w_scale per
//   block (DeepSeek's per-block promotion). 16 loads per lane are issued before the first MMA.
// - k slices of a CTA's warps are summed through shared memory in a fixed order (deterministic).
#include "backend/cuda/gemm/gemm_gemv.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/smem_opt_in.h"
#include "backend/cuda/ops/rms_row.cuh"

namespace wideserve::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kLoadsInFlight = 16;  // 16-byte weight loads per lane before the first MMA
constexpr int kXPad = 64;           // x row stride + 64 bytes: the 8 token rows hit distinct banks
constexpr size_t kMaxSmem = 200 * 1024;

struct GemvArgs {
  const uint8_t* x;          // [m] rows of x_ld bytes
  const float* x_scale;      // FP8: [k/128][m]
  const uint8_t* w;          // [n] rows of w_ld bytes
  const float* w_scale;      // FP8: [ceil(n/128)][ws_ld]
  void* y;                   // [m][y_ld] bf16 or fp32
  int64_t x_ld, w_ld, y_ld;  // bytes, bytes, elements
  int m, n, k, kb, ws_ld, warps_k;
  bool y_f32;
  float beta;
  float* residual;  // FP8: [m][y_ld] fp32, += bf16(result) instead of writing y
  // Rows n1..n-1 come from a second matrix (w2, row r - n1) into y2: two GEMVs of the same x in
  // one launch. n1 % 8 == 0, so a warp's 8 rows never straddle the two. n1 = n: one matrix.
  const uint8_t* w2;
  void* y2;
  int64_t w2_ld, y2_ld;
  int n1;
  // Per-head matrices (rows_per_head > 0): row r is row r % rows_per_head of head r /
  // rows_per_head, at w + head * w_head_stride, against x + head * x_head_stride (bytes). A CTA's
  // rows lie in one head (rows_per_head is a multiple of the CTA's rows).
  int rows_per_head;
  int64_t w_head_stride, x_head_stride;
  // BF16 only, optional: x rows are made while staging, RMSNorm of fp32 rows norm_src [m][k]
  // times norm_w, as launch_rms_norm's vector kernel makes them (k / 8 <= kThreads).
  const float* norm_src;
  const __nv_bfloat16* norm_w;
  float norm_eps;
  bool y_early;  // GemvConfig::y_early: thread i's finish item's fp32 y read before the wait
};

// x row r of a GEMV = RMSNorm(src[r]) * w into smem row r (stride xstride bytes), with
// launch_rms_norm's arithmetic (ops/rms_row.cuh: bit for bit at k <= 8 * kThreads).
__device__ __forceinline__ void stage_rms_rows(const GemvArgs& a, uint8_t* smem, int xstride) {
  const int c = threadIdx.x, nch = a.k / 8;
  const uint4 wv = rms_weight_chunk(a.norm_w, c, nch);
  for (int r = 0; r < a.m; ++r) {
    float v[8];
    rms_load_chunk(a.norm_src + static_cast<int64_t>(r) * a.k, c, nch, v);
    const uint4 o = rms_norm_chunk(v, wv, a.k, a.norm_eps);
    if (c < nch) *reinterpret_cast<uint4*>(smem + r * xstride + c * 16) = o;
  }
}

// kTail (BF16, k % 128 != 0): the last 128-wide k block is partial; its missing 64-byte chunks
// load as zeros in w and x (a separate instantiation, so full blocks pay no compare).
template <bool kFp8, bool kTail = false>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(const GemvArgs a) {
  KernelTrace kt_(kFp8 ? TraceKernel::kGemvFp8 : TraceKernel::kGemv);
  constexpr int kElem = kFp8 ? 1 : 2;
  constexpr int kChunks = 128 * kElem / 64;  // 64-byte chunks per 128-wide k block
  constexpr int kBatch = kLoadsInFlight / kChunks;
  extern __shared__ __align__(16) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int m = a.m, row_bytes = a.k * kElem, xstride = row_bytes + kXPad;
  const int wk = a.warps_k, rg_per_cta = kWarps / wk;
  const int rg = blockIdx.x * rg_per_cta + warp / wk, ks = warp % wk;
  const int row0 = rg * 8;
  const bool has_rows = row0 < a.n;  // warp-uniform
  const bool second = row0 >= a.n1;  // warp-uniform
  const int head =
      a.rows_per_head > 0 ? blockIdx.x * rg_per_cta * 8 / a.rows_per_head : 0;  // CTA-uniform
  const uint8_t* const xh = a.x + head * a.x_head_stride;
  const uint8_t* wrow = second ? a.w2 + min(row0 - a.n1 + g, a.n - a.n1 - 1) * a.w2_ld + t * 16
                               : a.w + head * a.w_head_stride +
                                     (min(row0 + g, a.n1 - 1) - head * a.rows_per_head) * a.w_ld +
                                     t * 16;
  const int kb0 = a.kb * ks / wk, kb1 = a.kb * (ks + 1) / wk;
  const int nch = row_bytes / 64;  // 64-byte chunks of a row (kTail: not a multiple of kChunks)
  uint4 wv[kBatch][kChunks];
  auto load_batch = [&](int b0) {
#pragma unroll
    for (int u = 0; u < kBatch; ++u)
#pragma unroll
      for (int h = 0; h < kChunks; ++h)
        wv[u][h] = b0 + u < kb1 && (!kTail || (b0 + u) * kChunks + h < nch)
                       ? __ldg(reinterpret_cast<const uint4*>(
                             wrow + static_cast<int64_t>((b0 + u) * kChunks + h) * 64))
                       : make_uint4(0, 0, 0, 0);
  };
  // Weights are constant: the first batch is in flight before waiting for the kernel that
  // writes x (programmatic dependent launch, common/pdl.cuh).
  if (has_rows) load_batch(kb0);
  // The finish loop below gives thread i item i (the launcher checks that one pass covers them).
  float y_old = 0.f;
  if (a.y_early && threadIdx.x < rg_per_cta * m * 8) {
    const int i = threadIdx.x, lrg = i / (m * 8), token = (i / 8) % m, r = i % 8;
    const int grow = (blockIdx.x * rg_per_cta + lrg) * 8 + r;
    if (grow < a.n) y_old = __ldcg(static_cast<const float*>(a.y) + token * a.y_ld + grow);
  }
  kt_.wait();
  pdl_launch_dependents();
  if (!kFp8 && a.norm_w != nullptr) {
    stage_rms_rows(a, smem, xstride);
  } else {
    for (int i = threadIdx.x; i < m * (row_bytes / 16); i += kThreads) {
      const int r = i / (row_bytes / 16), c = i % (row_bytes / 16);
      *reinterpret_cast<uint4*>(smem + r * xstride + c * 16) =
          __ldg(reinterpret_cast<const uint4*>(xh + r * a.x_ld) + c);
    }
  }
  float* part = reinterpret_cast<float*>(smem + m * xstride);  // [warps][8 tokens][8 rows]
  __syncthreads();

  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  if (has_rows) {
    const uint8_t* xrow = smem + g * xstride + t * 16;
    const float* wsc = kFp8 ? a.w_scale + static_cast<int64_t>(row0 / 128) * a.ws_ld : nullptr;
    for (int b0 = kb0; b0 < kb1; b0 += kBatch) {
      if (b0 != kb0) load_batch(b0);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int blk = b0 + u;
        if (blk >= kb1) break;
        float cb[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int h = 0; h < kChunks; ++h) {
          const uint4 xv = g < m && (!kTail || blk * kChunks + h < nch)
                               ? *reinterpret_cast<const uint4*>(xrow + (blk * kChunks + h) * 64)
                               : make_uint4(0, 0, 0, 0);
          if constexpr (kFp8)
            mma_e4m3_chunk64(cb, xv, wv[u][h]);
          else
            mma_bf16_chunk64(acc, xv, wv[u][h]);
        }
        if constexpr (kFp8) {
          const float s = g < m ? __ldg(wsc + blk) * __ldg(a.x_scale + blk * m + g) : 0.f;
          acc[0] = fmaf(cb[0], s, acc[0]);
          acc[1] = fmaf(cb[1], s, acc[1]);
        }
      }
    }
  }
  // C fragment: acc[e] is token g, weight row row0 + 2t + e.
  if (g < m) {
    part[(warp * 8 + g) * 8 + 2 * t] = acc[0];
    part[(warp * 8 + g) * 8 + 2 * t + 1] = acc[1];
  }
  __syncthreads();
  // Finish: one thread per (row group of the CTA, token, row), k slices summed in order.
  for (int i = threadIdx.x; i < rg_per_cta * m * 8; i += kThreads) {
    const int lrg = i / (m * 8), token = (i / 8) % m, r = i % 8;
    const int grow = (blockIdx.x * rg_per_cta + lrg) * 8 + r;
    if (grow >= a.n) continue;
    float sum = 0.f;
    for (int s = 0; s < wk; ++s) sum += part[((lrg * wk + s) * 8 + token) * 8 + r];
    const bool in2 = grow >= a.n1;
    const int64_t at = in2 ? token * a.y2_ld + (grow - a.n1) : token * a.y_ld + grow;
    void* const y = in2 ? a.y2 : a.y;
    if (a.residual != nullptr) {  // residual += bf16(y): the add_residual it replaces rounds alike
      if (a.beta != 0.f) sum += a.beta * __bfloat162float(static_cast<__nv_bfloat16*>(y)[at]);
      a.residual[at] += __bfloat162float(__float2bfloat16(sum));
    } else if (a.y_f32) {
      float* out = static_cast<float*>(y) + at;
      *out = a.beta != 0.f ? sum + a.beta * (a.y_early ? y_old : *out) : sum;
    } else {
      __nv_bfloat16* out = static_cast<__nv_bfloat16*>(y) + at;
      if (a.beta != 0.f) sum += a.beta * __bfloat162float(*out);
      *out = __float2bfloat16(sum);
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

size_t smem_bytes(int64_t m, int64_t row_bytes) {
  return static_cast<size_t>(m * (row_bytes + kXPad)) + kWarps * 64 * sizeof(float);
}

template <bool kFp8>
void launch(GemvArgs a, const GemvConfig& cfg, cudaStream_t stream) {
  const int warps_k = cfg.warps_k;
  static SmemOptIn smem_opt_in;
  smem_opt_in.raise({reinterpret_cast<const void*>(gemv_kernel<kFp8>),
                     reinterpret_cast<const void*>(gemv_kernel<false, true>)},
                    static_cast<int>(kMaxSmem));
  int device = 0, sms = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if (a.w2 == nullptr) a.n1 = a.n;
  a.kb = static_cast<int>(ceil_div(a.k, 128));
  a.warps_k = warps_k != 0 ? warps_k : plan_gemv_warps_k(a.n, a.k, sms);
  const int64_t grid = ceil_div(a.n, int64_t{8} * (kWarps / a.warps_k));
  const size_t smem = smem_bytes(a.m, int64_t{a.k} * (kFp8 ? 1 : 2));
  a.y_early = cfg.y_early;
  if (a.y_early)
    WS_CUDA_REQUIRE(!kFp8 && a.y_f32 && a.beta != 0.f && a.w2 == nullptr && a.rows_per_head == 0 &&
                        a.norm_w == nullptr && (kWarps / a.warps_k) * a.m * 8 <= kThreads,
                    "GEMV y_early: a single BF16 matrix with an fp32 y, beta != 0 and m <= 4");
  if (!kFp8 && a.k % 128 != 0)
    launch_pdl(gemv_kernel<false, true>, dim3(static_cast<unsigned>(grid)), dim3(kThreads), smem,
               stream, a);
  else
    launch_pdl(gemv_kernel<kFp8>, dim3(static_cast<unsigned>(grid)), dim3(kThreads), smem, stream,
               a);
}

bool valid_warps_k(int v) {
  return v == 0 || v == 1 || v == 2 || v == 4 || v == 8;
}

// The checks both element types share ("" = fine).
// k_align: 128 for FP8 (its scales are per 128-wide block), 32 for BF16 (one 64-byte chunk).
std::string shape_problem(int64_t m, int64_t n, int64_t k, int64_t max_m, int64_t elem,
                          int64_t k_align) {
  if (m < 1 || m > max_m) return "m=" + std::to_string(m) + " outside 1.." + std::to_string(max_m);
  if (n < 1 || k < 128 || k % k_align != 0 || n > (int64_t{1} << 30) || k > (int64_t{1} << 24))
    return "shape n=" + std::to_string(n) + " k=" + std::to_string(k) +
           " (want k >= 128, a multiple of " + std::to_string(k_align) + ")";
  if (smem_bytes(m, k * elem) > kMaxSmem)
    return "x rows of " + std::to_string(m) + " x " + std::to_string(k * elem) +
           " bytes exceed shared memory";
  return {};
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

int plan_gemv_warps_k(int64_t n, int64_t k, int sm_count) {
  const int64_t groups = ceil_div(n, 8), kb = k / 128, want = int64_t{12} * sm_count;
  int wk = 1;
  while (wk < kWarps && groups * wk < want && kb / (2 * wk) >= 4) wk *= 2;
  return wk;
}

std::string fp8_gemv_unsupported(const GemmFp8BlockParams& p) {
  std::string why = shape_problem(p.m, p.n, p.k, kFp8GemvMaxM, 1, 128);
  if (!why.empty()) return why;
  if (p.x == nullptr || p.x_scale == nullptr || p.w == nullptr || p.w_scale == nullptr ||
      p.y == nullptr)
    return "null pointer";
  if (!aligned16(p.x) || !aligned16(p.w)) return "x and w must be 16-byte aligned";
  if (p.w_scale_ld != 0 && p.w_scale_ld < p.k / 128)
    return "w_scale_ld " + std::to_string(p.w_scale_ld) + " < k/128";
  return {};
}

void launch_fp8_gemv(const GemmFp8BlockParams& p, const GemvConfig& cfg, cudaStream_t stream) {
  const std::string why = fp8_gemv_unsupported(p);
  WS_CUDA_REQUIRE(why.empty(), "gemm_fp8_block GEMV path: " + why);
  WS_CUDA_REQUIRE(valid_warps_k(cfg.warps_k),
                  "gemm_fp8_block GEMV path: warps_k=" + std::to_string(cfg.warps_k) +
                      " (want 0, 1, 2, 4 or 8)");
  GemvArgs a{};
  a.x = reinterpret_cast<const uint8_t*>(p.x);
  a.x_scale = p.x_scale;
  a.w = reinterpret_cast<const uint8_t*>(p.w);
  a.w_scale = p.w_scale;
  a.y = p.y;
  a.x_ld = a.w_ld = p.k;
  a.y_ld = p.n;
  a.m = static_cast<int>(p.m);
  a.n = static_cast<int>(p.n);
  a.k = static_cast<int>(p.k);
  a.ws_ld = static_cast<int>(p.w_scale_ld != 0 ? p.w_scale_ld : p.k / 128);
  a.beta = p.beta;
  a.residual = p.residual;
  launch<true>(a, cfg, stream);
}

std::string bf16_gemv_unsupported(const GemmBf16Params& p) {
  std::string why = shape_problem(p.m, p.n, p.k, kBf16GemvMaxM, 2, 32);
  if (!why.empty()) return why;
  if (p.x == nullptr || p.w == nullptr || p.y == nullptr) return "null pointer";
  const int64_t ldx = p.ldx != 0 ? p.ldx : p.k, ldw = p.ldw != 0 ? p.ldw : p.k;
  if (!aligned16(p.x) || !aligned16(p.w) || ldx % 8 != 0 || ldw % 8 != 0)
    return "x and w rows must be 16-byte aligned";
  return {};
}

void launch_bf16_gemv(const GemmBf16Params& p, const GemvConfig& cfg, cudaStream_t stream) {
  const std::string why = bf16_gemv_unsupported(p);
  WS_CUDA_REQUIRE(why.empty(), "gemm_bf16 GEMV path: " + why);
  WS_CUDA_REQUIRE(
      valid_warps_k(cfg.warps_k),
      "gemm_bf16 GEMV path: warps_k=" + std::to_string(cfg.warps_k) + " (want 0, 1, 2, 4 or 8)");
  GemvArgs a{};
  a.x = reinterpret_cast<const uint8_t*>(p.x);
  a.w = reinterpret_cast<const uint8_t*>(p.w);
  a.y = p.y;
  a.x_ld = 2 * (p.ldx != 0 ? p.ldx : p.k);
  a.w_ld = 2 * (p.ldw != 0 ? p.ldw : p.k);
  a.y_ld = p.ldy != 0 ? p.ldy : p.n;
  a.m = static_cast<int>(p.m);
  a.n = static_cast<int>(p.n);
  a.k = static_cast<int>(p.k);
  a.y_f32 = p.y_f32;
  a.beta = p.beta;
  launch<false>(a, cfg, stream);
}

std::string bf16_gemv_heads_unsupported(const GemvHeadsParams& p) {
  std::string why = shape_problem(p.m, p.heads * p.rows, p.k, kBf16GemvMaxM, 2, 32);
  if (!why.empty()) return why;
  if (p.x == nullptr || p.w == nullptr || p.y == nullptr) return "null pointer";
  if (p.heads < 1 || p.rows < 64 || p.rows % 64 != 0)
    return "rows per head " + std::to_string(p.rows) + " (want a positive multiple of 64)";
  if (p.x_ld < p.heads * p.x_head_stride || p.x_head_stride < p.k || p.ldw < p.k ||
      p.w_head_stride < p.rows * p.ldw || p.ldy < p.heads * p.rows)
    return "strides overlap";
  if (!aligned16(p.x) || !aligned16(p.w) || !aligned16(p.y) || p.x_ld % 8 != 0 ||
      p.x_head_stride % 8 != 0 || p.ldw % 8 != 0 || p.w_head_stride % 8 != 0)
    return "x and w rows must be 16-byte aligned";
  return {};
}

void launch_bf16_gemv_heads(const GemvHeadsParams& p, const GemvConfig& cfg, cudaStream_t stream) {
  const std::string why = bf16_gemv_heads_unsupported(p);
  WS_CUDA_REQUIRE(why.empty(), "BF16 per-head GEMV: " + why);
  WS_CUDA_REQUIRE(
      valid_warps_k(cfg.warps_k),
      "BF16 per-head GEMV: warps_k=" + std::to_string(cfg.warps_k) + " (want 0, 1, 2, 4 or 8)");
  GemvArgs a{};
  a.x = reinterpret_cast<const uint8_t*>(p.x);
  a.w = reinterpret_cast<const uint8_t*>(p.w);
  a.y = p.y;
  a.x_ld = 2 * p.x_ld;
  a.x_head_stride = 2 * p.x_head_stride;
  a.w_ld = 2 * p.ldw;
  a.w_head_stride = 2 * p.w_head_stride;
  a.y_ld = p.ldy;
  a.m = static_cast<int>(p.m);
  a.n = static_cast<int>(p.heads * p.rows);
  a.k = static_cast<int>(p.k);
  a.rows_per_head = static_cast<int>(p.rows);
  launch<false>(a, cfg, stream);
}

std::string bf16_gemv_pair_unsupported(const GemmBf16Params& a, const GemmBf16Params& b) {
  for (const GemmBf16Params* p : {&a, &b}) {
    std::string why = bf16_gemv_unsupported(*p);
    if (!why.empty()) return why;
  }
  const int64_t lda = a.ldx != 0 ? a.ldx : a.k, ldb = b.ldx != 0 ? b.ldx : b.k;
  if (a.x != b.x || lda != ldb || a.m != b.m || a.k != b.k)
    return "the pair must share x, its row stride, m and k";
  if (a.n % 8 != 0) return "first n=" + std::to_string(a.n) + " not a multiple of 8";
  if (a.y_f32 || b.y_f32 || a.beta != 0.f || b.beta != 0.f) return "pair outputs are plain bf16";
  if (a.n + b.n > (int64_t{1} << 30)) return "pair too wide";
  return {};
}

namespace {

GemvArgs pair_args(const GemmBf16Params& p, const GemmBf16Params& q, const GemvConfig& cfg) {
  const std::string why = bf16_gemv_pair_unsupported(p, q);
  WS_CUDA_REQUIRE(why.empty(), "BF16 GEMV pair: " + why);
  WS_CUDA_REQUIRE(
      valid_warps_k(cfg.warps_k),
      "BF16 GEMV pair: warps_k=" + std::to_string(cfg.warps_k) + " (want 0, 1, 2, 4 or 8)");
  GemvArgs a{};
  a.x = reinterpret_cast<const uint8_t*>(p.x);
  a.w = reinterpret_cast<const uint8_t*>(p.w);
  a.w2 = reinterpret_cast<const uint8_t*>(q.w);
  a.y = p.y;
  a.y2 = q.y;
  a.x_ld = 2 * (p.ldx != 0 ? p.ldx : p.k);
  a.w_ld = 2 * (p.ldw != 0 ? p.ldw : p.k);
  a.w2_ld = 2 * (q.ldw != 0 ? q.ldw : q.k);
  a.y_ld = p.ldy != 0 ? p.ldy : p.n;
  a.y2_ld = q.ldy != 0 ? q.ldy : q.n;
  a.m = static_cast<int>(p.m);
  a.n1 = static_cast<int>(p.n);
  a.n = static_cast<int>(p.n + q.n);
  a.k = static_cast<int>(p.k);
  return a;
}

}  // namespace

void launch_bf16_gemv_pair(const GemmBf16Params& p, const GemmBf16Params& q, const GemvConfig& cfg,
                           cudaStream_t stream) {
  launch<false>(pair_args(p, q, cfg), cfg, stream);
}

std::string gemv_rms_norm_unsupported(const GemvRmsNorm& n, int64_t k) {
  return rms_row_unsupported(n.src, n.w, k, kThreads);
}

void launch_bf16_gemv_pair_normed(const GemmBf16Params& p, const GemmBf16Params& q,
                                  const GemvRmsNorm& norm, const GemvConfig& cfg,
                                  cudaStream_t stream) {
  const std::string why = gemv_rms_norm_unsupported(norm, p.k);
  WS_CUDA_REQUIRE(why.empty(), "BF16 GEMV pair with RMSNorm: " + why);
  // x is never read: the checks of the pair see the norm's source in its place.
  GemmBf16Params pp = p, qq = q;
  pp.x = qq.x = reinterpret_cast<const __nv_bfloat16*>(norm.src);
  pp.ldx = qq.ldx = 0;
  GemvArgs a = pair_args(pp, qq, cfg);
  a.norm_src = norm.src;
  a.norm_w = norm.w;
  a.norm_eps = norm.eps;
  launch<false>(a, cfg, stream);
}

}  // namespace wideserve::cuda
