// Fused small-batch MoE (moe_small.h): two launches of warp dot products over weight rows.
// - Weight rows stream through 16-byte read-only loads (kUnroll chunks per lane per pass, several
//   rows per warp at once), so each SM keeps tens of KiB in flight: the launches are bound by
//   HBM, not by latency.
// - The vector side (x, or a unit's activations) sits in shared memory as floats, already
//   rounded the way the grouped pipeline rounds it (bf16, or FP8 1x128 quantize-dequantize).
//   Lane l reads chunk l of a row, i.e. 32 (bf16) or 64 (FP8) bytes of floats at a 32/64-byte
//   stride; float4 slots are XOR-swizzled so the 8 lanes of one 128-bit shared-memory phase hit
//   8 distinct bank quads.
// - FP8 weights run on tensor cores instead (the rows8_dots launches below): CUDA-core e4m3
//   decoding cost ~60 instructions per 16 bytes and held the launches near 55% of the bytes floor
//   on the H200. So does the BF16 down launch when I % 128 == 0 (moe_small_down_bf16.cu).
// - Shared constants and helpers: moe_small_common.cuh.
#include "backend/cuda/moe/moe_small.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstring>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/smem_opt_in.h"
#include "backend/cuda/gemm/fp8_quant.cuh"
#include "backend/cuda/moe/moe_small_common.cuh"
#include "backend/cuda/ops/rms_row.cuh"

namespace wideserve::cuda {
namespace {

// ---- BF16 weights: CUDA-core warp dots ----

// Grid (ceil(I / kUpRows), T * units). act[t, u, j] = silu(bf16(gate_j)) * bf16(up_j). A
// token's shared units come first in the grid (y = t * units + s: s < num_shared is shared slice
// s, else routed slot s - num_shared), so their CTAs are resident first: they depend on nothing
// the launch before this one (the routing) writes (x comes from the norm, two or more launches
// back), so they run whole before the wait, while the routing leaves HBM idle. The routed CTAs
// (top_k >= 1 per token) all wait, so the grid still completes after the routing's.
__global__ void __launch_bounds__(kThreads, 2)
    moe_small_up_kernel(const MoeSmallParams p, int units) {
  KernelTrace kt_(TraceKernel::kMoeSmallUp);
  extern __shared__ float4 xs[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t = blockIdx.y / units, s_ = blockIdx.y % units, ns = units - p.top_k;
  const int u = s_ < ns ? static_cast<int>(p.top_k) + s_ : s_ - ns;
  const int64_t H = p.hidden, I = p.inter;
  const bool shared = u >= p.top_k;
  // A routed unit's expert comes from the routing kernel.
  if (!shared) kt_.wait();
  int64_t e = 0;
  if (!unit_of(p, t, u, &e).valid) return;  // remote expert: the down kernel skips it too
  const uint8_t* W = static_cast<const uint8_t*>(shared ? p.shared_gate_up : p.gate_up);
  // Global row indices of this unit's gate row 0 and up row 0 in W ([rows, H]).
  const int64_t g0 = shared ? e * I : e * 2 * I;
  const int64_t u0 = shared ? p.num_shared * I + e * I : g0 + I;
  const int nch = static_cast<int>(H * 2 / 16);
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kUpRows + warp * kUpRowsPerWarp;
  constexpr int NI = 2 * kUpRowsPerWarp;
  const uint4* w[NI];
  const float4* v[NI];
#pragma unroll
  for (int r = 0; r < kUpRowsPerWarp; ++r) {
    const int64_t j = j0 + r < I ? j0 + r : (j0 < I ? j0 : 0);  // past I: a valid row, not stored
    w[2 * r] = reinterpret_cast<const uint4*>(W + (g0 + j) * H * 2);
    w[2 * r + 1] = reinterpret_cast<const uint4*>(W + (u0 + j) * H * 2);
    v[2 * r] = v[2 * r + 1] = xs;
  }
  // The weights' first batch is in flight while x is staged.
  uint4 wv[4][NI];
  if (j0 < I) warp_dots_load<NI, 4>(w, nch, lane, wv);
  pdl_launch_dependents();
  if (p.x_norm_src != nullptr) {
    // x = RMSNorm(residual row t) * w, thread c chunk c (H <= 8 * kThreads), as floats in the
    // swizzled slots stage_rows fills.
    const int c = threadIdx.x, nc = static_cast<int>(H / 8);
    float v[8];
    rms_load_chunk(p.x_norm_src + t * H, c, nc, v);
    const uint4 o =
        rms_norm_chunk(v, rms_weight_chunk(p.x_norm_w, c, nc), static_cast<int>(H), p.x_norm_eps);
    if (c < nc) {
      xs[swz(2 * c)] = bf16x4_to_float4(make_uint2(o.x, o.y));
      xs[swz(2 * c + 1)] = bf16x4_to_float4(make_uint2(o.z, o.w));
    }
  } else {
    // Few loads per thread while the weights hold registers.
    stage_rows<__nv_bfloat16, 2>(p.x + t * H, 1, static_cast<int>(H), 1u, xs, 0, threadIdx.x);
  }
  __syncthreads();
  if (j0 >= I) return;  // warp-uniform
  float d[NI];
  warp_dots<NI, 4>(w, v, nch, lane, d, wv, true);
  if (lane == 0) {
    float* out = p.act + (static_cast<int64_t>(t) * units + u) * I;
#pragma unroll
    for (int r = 0; r < kUpRowsPerWarp; ++r)
      if (j0 + r < I) out[j0 + r] = silu(bf16r(d[2 * r])) * bf16r(d[2 * r + 1]);
  }
}

// Grid (ceil(H / rows), T). Stages the token's unit activations (bf16-rounded), one warp dot per
// (row, unit) pair (two at a time), then combines each row.
__global__ void __launch_bounds__(kThreads, 2)
    moe_small_down_kernel(const MoeSmallParams p, int units, int rows) {
  KernelTrace kt_(TraceKernel::kMoeSmallDown);
  const CombineEarly early =
      combine_early(p, blockIdx.y, static_cast<int64_t>(blockIdx.x) * rows, rows);
  kt_.wait();
  pdl_launch_dependents();
  extern __shared__ float4 smem4[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t = blockIdx.y;
  const int64_t H = p.hidden, I = p.inter, K = p.top_k;
  const int64_t ipad = pad32(I);
  float* part = reinterpret_cast<float*>(smem4) + units * ipad;  // [rows][units]
  uint32_t live = 0;
  for (int u = 0; u < units; ++u) {
    int64_t e = 0;
    if (unit_of(p, t, u, &e).valid) live |= 1u << u;
  }
  const int nch = static_cast<int>(I * 2 / 16);
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * rows;
  const int items = rows * units;
  // Item pointers of a round (two (row, unit) items per warp); ok = a live item to compute.
  auto round_rows = [&](int i0, const uint4*(&w)[2], const float4*(&v)[2], bool(&ok)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int it = i0 + h < items ? i0 + h : i0;
      const int u = it % units;
      const int64_t n = n0 + it / units;
      int64_t e = 0;
      (void)unit_of(p, t, u, &e);
      ok[h] = i0 + h < items && n < H && ((live >> u) & 1u);
      const UnitRows ur = down_rows_of(p, u >= K, ok[h] || u >= K ? e : 0, 2);
      w[h] = reinterpret_cast<const uint4*>(ur.base + (n < H ? n : H - 1) * ur.row_bytes);
      v[h] = smem4 + u * ipad / 4;
    }
  };
  // The first round's weights are in flight while the activations are staged.
  uint4 wv[8][2];
  const bool pre = nch <= 32 * 8 && warp * 2 < items;
  if (pre) {
    const uint4* w[2];
    const float4* v[2];
    bool ok[2];
    round_rows(warp * 2, w, v, ok);
    if (ok[0] || ok[1]) warp_dots_load<2, 8>(w, nch, lane, wv);
  }
  stage_rows<float, 4>(p.act + static_cast<int64_t>(t) * units * I, units, static_cast<int>(I),
                       live, smem4, static_cast<int>(ipad / 4), threadIdx.x);
  __syncthreads();

  for (int i0 = warp * 2; i0 < items; i0 += kWarps * 2) {
    const uint4* w[2];
    const float4* v[2];
    bool ok[2];
    round_rows(i0, w, v, ok);
    if (!ok[0] && !ok[1]) continue;  // warp-uniform
    float d[2];
    warp_dots<2, 8>(w, v, nch, lane, d, wv, pre && i0 == warp * 2);
    if (lane == 0)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        if (i0 + h < items) part[i0 + h] = ok[h] ? d[h] : 0.f;
  }
  __syncthreads();
  combine_rows(p, t, units, part, n0, rows, early);
}

// ---- FP8 weights: tensor-core GEMV steps (mma_e4m3_chunk64) ----

constexpr int kFp8Batch = 4;       // k blocks in flight per 8-row group
constexpr int kFp8DownGroups = 4;  // 8-row groups of the output per down CTA

// Quantizes rows r < nrows with bit r of `live` (len values each, bf16 or fp32; bit r of
// round_first: rounded to bf16 first) in 1x128 groups (launch_quantize_fp8's rule) into e4m3
// q + r * len and scales sc + r * (len / 128). One warp per group, kBatch groups loaded at once.
template <typename Src>
__device__ __forceinline__ void stage_fp8(const Src* src, int nrows, int len, uint32_t live,
                                          uint32_t round_first, uint8_t* q, float* sc, int warp,
                                          int lane) {
  constexpr int kBatch = 8;
  const int per = len / 128, total = nrows * per;
  for (int q0 = warp; q0 < total; q0 += kWarps * kBatch) {
    float4 f[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int gq = q0 + b * kWarps, r = gq / per;
      if (gq >= total || !((live >> r) & 1u)) continue;
      f[b] = load4f(src + static_cast<int64_t>(gq) * 128 + lane * 4);
      if ((round_first >> r) & 1u)
        f[b] = make_float4(bf16r(f[b].x), bf16r(f[b].y), bf16r(f[b].z), bf16r(f[b].w));
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int gq = q0 + b * kWarps, r = gq / per;
      if (gq >= total || !((live >> r) & 1u)) continue;  // warp-uniform
      float amax = fmaxf(fmaxf(fabsf(f[b].x), fabsf(f[b].y)), fmaxf(fabsf(f[b].z), fabsf(f[b].w)));
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, o));
      const float s = fp8_group_scale(amax);
      const __nv_fp8_e4m3 e[4] = {__nv_fp8_e4m3(f[b].x / s), __nv_fp8_e4m3(f[b].y / s),
                                  __nv_fp8_e4m3(f[b].z / s), __nv_fp8_e4m3(f[b].w / s)};
      uint32_t packed;
      memcpy(&packed, e, 4);
      *reinterpret_cast<uint32_t*>(q + static_cast<int64_t>(gq) * 128 + lane * 4) = packed;
      if (lane == 0) sc[gq] = s;
    }
  }
}

// NG groups of 8 weight rows against one quantized vector each, over kb 128-wide k blocks. Lane
// (g, t): w[i] = its row g + t * 16, x[i] = the vector + t * 16 (read by g == 0 only), wsc[i] /
// xsc[i] = the group's / vector's block scales. acc[i][e] (lanes g == 0): weight row 2t + e.
template <int NG>
__device__ __forceinline__ void rows8_dots(const uint8_t* const (&w)[NG],
                                           const float* const (&wsc)[NG],
                                           const uint8_t* const (&x)[NG],
                                           const float* const (&xsc)[NG], int kb, bool a_row,
                                           float (&acc)[NG][2]) {
#pragma unroll
  for (int i = 0; i < NG; ++i) acc[i][0] = acc[i][1] = 0.f;
  for (int b0 = 0; b0 < kb; b0 += kFp8Batch) {
    uint4 wv[kFp8Batch][NG][2];
    load_blocks<NG, kFp8Batch, 2>(w, b0, kb, wv);
#pragma unroll
    for (int u = 0; u < kFp8Batch; ++u) {
      const int blk = b0 + u;
      if (blk >= kb) break;
#pragma unroll
      for (int i = 0; i < NG; ++i) {
        float cb[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint4 xv = a_row ? *reinterpret_cast<const uint4*>(x[i] + (blk * 2 + h) * 64)
                                 : make_uint4(0, 0, 0, 0);
          mma_e4m3_chunk64(cb, xv, wv[u][i][h]);
        }
        const float s = a_row ? __ldg(wsc[i] + blk) * xsc[i][blk] : 0.f;
        acc[i][0] = fmaf(cb[0], s, acc[i][0]);
        acc[i][1] = fmaf(cb[1], s, acc[i][1]);
      }
    }
  }
}

// Grid (ceil(I / 64), T * units): warp = intermediate rows j0..j0+7, gate and up groups at once.
__global__ void __launch_bounds__(kThreads, 2)
    moe_small_up_fp8_kernel(const MoeSmallParams p, int units) {
  KernelTrace kt_(TraceKernel::kMoeSmallUp);
  kt_.wait();
  pdl_launch_dependents();
  extern __shared__ __align__(16) uint8_t smem8[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int t = blockIdx.y / units, u = blockIdx.y % units;
  const int64_t H = p.hidden, I = p.inter, kb = H / 128;
  int64_t e = 0;
  if (!unit_of(p, t, u, &e).valid) return;
  const bool shared = u >= p.top_k;
  const uint8_t* W = static_cast<const uint8_t*>(shared ? p.shared_gate_up : p.gate_up);
  const float* S = shared ? p.shared_gate_up_scale : p.gate_up_scale;
  const int64_t g0 = shared ? e * I : e * 2 * I;
  const int64_t u0 = shared ? p.num_shared * I + e * I : g0 + I;
  float* xsc = reinterpret_cast<float*>(smem8 + H);
  stage_fp8(p.x + t * H, 1, static_cast<int>(H), 1u, 0u, smem8, xsc, warp, lane);
  __syncthreads();
  const int64_t j0 = (static_cast<int64_t>(blockIdx.x) * kWarps + warp) * 8;
  if (j0 >= I) return;  // warp-uniform (I % 128 == 0)
  const uint8_t* w[2] = {W + (g0 + j0 + g) * H + t4 * 16, W + (u0 + j0 + g) * H + t4 * 16};
  const float* wsc[2] = {S + ((g0 + j0) / 128) * kb, S + ((u0 + j0) / 128) * kb};
  const uint8_t* x[2] = {smem8 + t4 * 16, smem8 + t4 * 16};
  const float* xs[2] = {xsc, xsc};
  float acc[2][2];
  rows8_dots<2>(w, wsc, x, xs, static_cast<int>(kb), g == 0, acc);
  if (g == 0) {
    float* out = p.act + (static_cast<int64_t>(t) * units + u) * I + j0 + 2 * t4;
    out[0] = silu(bf16r(acc[0][0])) * bf16r(acc[1][0]);
    out[1] = silu(bf16r(acc[0][1])) * bf16r(acc[1][1]);
  }
}

// Grid (ceil(H / (8 * kFp8DownGroups)), T): stages the token's unit activations quantized (the
// shared MLP's from bf16), one warp per (8-row group, unit) item (two at a time), then combines.
__global__ void __launch_bounds__(kThreads, 2)
    moe_small_down_fp8_kernel(const MoeSmallParams p, int units) {
  KernelTrace kt_(TraceKernel::kMoeSmallDown);
  const CombineEarly early = combine_early(
      p, blockIdx.y, static_cast<int64_t>(blockIdx.x) * 8 * kFp8DownGroups, 8 * kFp8DownGroups);
  kt_.wait();
  pdl_launch_dependents();
  extern __shared__ __align__(16) uint8_t smem8[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int t = blockIdx.y;
  const int64_t I = p.inter, K = p.top_k, kb = I / 128;
  constexpr int kRows = 8 * kFp8DownGroups;
  float* asc = reinterpret_cast<float*>(smem8 + units * I);  // [units][I/128]
  float* part = asc + units * kb;                            // [kRows][units]
  uint32_t live = 0, round_first = 0;
  for (int u = 0; u < units; ++u) {
    int64_t e = 0;
    if (unit_of(p, t, u, &e).valid) live |= 1u << u;
    if (u >= K) round_first |= 1u << u;
  }
  stage_fp8(p.act + static_cast<int64_t>(t) * units * I, units, static_cast<int>(I), live,
            round_first, smem8, asc, warp, lane);
  __syncthreads();
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int items = kFp8DownGroups * units;
  for (int i0 = warp * 2; i0 < items; i0 += kWarps * 2) {
    const uint8_t* w[2];
    const float* wsc[2];
    const uint8_t* x[2];
    const float* xs[2];
    bool ok[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const DownItem d = down_item(p, t, i0, h, items, units, n0, live, 1);
      ok[h] = d.ok;
      w[h] = d.rows.base + (d.row + g) * d.rows.row_bytes + t4 * 16;
      wsc[h] = d.rows.scale + (d.row / 128) * d.rows.scale_ld;
      x[h] = smem8 + d.u * I + t4 * 16;
      xs[h] = asc + d.u * kb;
    }
    if (!ok[0] && !ok[1]) continue;  // warp-uniform
    float acc[2][2];
    rows8_dots<2>(w, wsc, x, xs, static_cast<int>(kb), g == 0, acc);
    if (g == 0) store_item_dots<2>(part, i0, items, units, t4, ok, acc);
  }
  __syncthreads();
  combine_rows(p, t, units, part, n0, kRows, early);
}

size_t up_smem(const MoeSmallParams& p) {
  if (p.fp8) return static_cast<size_t>(p.hidden + p.hidden / 128 * 4);
  return static_cast<size_t>(pad32(p.hidden)) * sizeof(float);
}
int down_rows(const MoeSmallParams& p) {
  if (p.fp8) return 8 * kFp8DownGroups;
  return p.hidden >= 4096 ? 16 : 8;
}
size_t down_smem(const MoeSmallParams& p) {
  const int64_t units = p.top_k + p.num_shared;
  if (p.fp8)
    return static_cast<size_t>(units * p.inter + units * (p.inter / 128) * 4 +
                               down_rows(p) * units * 4);
  return static_cast<size_t>(units * pad32(p.inter) + down_rows(p) * units) * sizeof(float);
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

// Raises the four kernels' dynamic shared-memory limit once per device.
void allow_smem() {
  static SmemOptIn smem_opt_in;
  smem_opt_in.raise({reinterpret_cast<const void*>(moe_small_up_kernel),
                     reinterpret_cast<const void*>(moe_small_up_fp8_kernel),
                     reinterpret_cast<const void*>(moe_small_down_kernel),
                     reinterpret_cast<const void*>(moe_small_down_fp8_kernel)},
                    static_cast<int>(kMaxSmem));
}

}  // namespace

size_t moe_small_act_floats(int64_t tokens, int64_t top_k, int64_t num_shared, int64_t inter) {
  return static_cast<size_t>(tokens * (top_k + num_shared) * inter);
}

std::string moe_small_unsupported(const MoeSmallParams& p) {
  const int64_t units = p.top_k + p.num_shared, mult = p.fp8 ? 128 : 8;
  if (p.num_tokens < 0 || p.num_tokens > kMoeSmallMaxTokens)
    return "tokens=" + std::to_string(p.num_tokens) + " outside 0.." +
           std::to_string(kMoeSmallMaxTokens);
  if (p.top_k < 1 || p.num_shared < 0 || units > kMaxUnits || p.num_experts < 1)
    return "top_k=" + std::to_string(p.top_k) + " + shared=" + std::to_string(p.num_shared) +
           " (at most " + std::to_string(kMaxUnits) +
           " units), experts=" + std::to_string(p.num_experts);
  if (p.hidden < mult || p.hidden % mult != 0 || p.inter < mult || p.inter % mult != 0 ||
      p.hidden > (int64_t{1} << 20) || p.inter > (int64_t{1} << 20))
    return "hidden=" + std::to_string(p.hidden) + " inter=" + std::to_string(p.inter) +
           " (want positive multiples of " + std::to_string(mult) + ")";
  if (up_smem(p) > kMaxSmem || down_smem(p) > kMaxSmem)
    return "shared memory: hidden=" + std::to_string(p.hidden) + ", " + std::to_string(units) +
           " units x inter=" + std::to_string(p.inter);
  if (p.x_norm_src != nullptr) {
    if (p.fp8) return "x by RMSNorm: BF16 weights only";
    const std::string why = rms_row_unsupported(p.x_norm_src, p.x_norm_w, p.hidden, kThreads);
    if (!why.empty()) return "x by RMSNorm: " + why;
  }
  const bool ptrs =
      (p.x || p.x_norm_src) && p.topk_ids && p.topk_weights && p.gate_up && p.down && p.act &&
      p.residual && (!p.fp8 || (p.gate_up_scale && p.down_scale)) &&
      (p.num_shared == 0 || (p.shared_gate_up && p.shared_down &&
                             (!p.fp8 || (p.shared_gate_up_scale && p.shared_down_scale))));
  if (!ptrs) return "null pointer";
  if (p.shared_out != nullptr && p.num_shared != 0) return "shared_out with shared units";
  if (!aligned16(p.x) || !aligned16(p.gate_up) || !aligned16(p.down) || !aligned16(p.act) ||
      (p.num_shared > 0 && (!aligned16(p.shared_gate_up) || !aligned16(p.shared_down))))
    return "x, weights and act must be 16-byte aligned";
  return {};
}

namespace {

void check_launch(const MoeSmallParams& p) {
  const std::string why = moe_small_unsupported(p);
  WS_CUDA_REQUIRE(why.empty(), "moe small path: " + why);
  allow_smem();
}

}  // namespace

void launch_moe_small_up(const MoeSmallParams& p, cudaStream_t stream) {
  check_launch(p);
  if (p.num_tokens == 0) return;
  const int units = static_cast<int>(p.top_k + p.num_shared);
  if (p.fp8) {
    const dim3 up_grid(static_cast<unsigned>(ceil_div(p.inter, 8 * kWarps)),
                       static_cast<unsigned>(p.num_tokens * units));
    launch_pdl(moe_small_up_fp8_kernel, up_grid, dim3(kThreads), up_smem(p), stream, p, units);
  } else {
    const dim3 up_grid(static_cast<unsigned>(ceil_div(p.inter, kUpRows)),
                       static_cast<unsigned>(p.num_tokens * units));
    launch_pdl(moe_small_up_kernel, up_grid, dim3(kThreads), up_smem(p), stream, p, units);
  }
}

void launch_moe_small_down(const MoeSmallParams& p, cudaStream_t stream) {
  check_launch(p);
  if (p.num_tokens == 0) return;
  const int units = static_cast<int>(p.top_k + p.num_shared);
  const int rows = down_rows(p);
  const dim3 down_grid(static_cast<unsigned>(ceil_div(p.hidden, rows)),
                       static_cast<unsigned>(p.num_tokens));
  if (p.fp8) {
    launch_pdl(moe_small_down_fp8_kernel, down_grid, dim3(kThreads), down_smem(p), stream, p,
               units);
  } else if (down_bf16_mma(p)) {
    launch_moe_small_down_bf16(p, units, stream);
  } else {
    launch_pdl(moe_small_down_kernel, down_grid, dim3(kThreads), down_smem(p), stream, p, units,
               rows);
  }
}

void launch_moe_small(const MoeSmallParams& p, cudaStream_t stream) {
  launch_moe_small_up(p, stream);
  launch_moe_small_down(p, stream);
}

}  // namespace wideserve::cuda
