// Internal to the fused small-batch MoE (moe_small.cu, moe_small_down_bf16.cu): launch constants,
// unit lookup, row staging and the per-row combine both files' kernels use. In an unnamed
// namespace: each file compiles its own copy (device code is not linked across files).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/moe/moe_small.h"

namespace wideserve::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxUnits = 32;
constexpr int kUpRowsPerWarp = 2;                 // intermediate rows j per warp (gate + up each)
constexpr int kUpRows = kWarps * kUpRowsPerWarp;  // per CTA
constexpr size_t kMaxSmem = 200 * 1024;
constexpr unsigned kFull = 0xffffffffu;

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
__host__ __device__ constexpr int64_t pad32(int64_t n) {
  return (n + 31) / 32 * 32;
}

// Physical float4 slot of logical slot s (a 16-byte chunk of bf16 weights is 2 slots).
__device__ __forceinline__ int swz(int s) {
  return s ^ ((s >> 3) & 1);
}

__device__ __forceinline__ float bf16r(float v) {
  return __bfloat162float(__float2bfloat16(v));
}

__device__ __forceinline__ float silu(float g) {
  return g / (1.0f + expf(-g));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// Dot of one 16-byte weight chunk c (8 bf16) with the staged vector v.
__device__ __forceinline__ float chunk_dot(const uint4 w, const float4* v, int c) {
  const uint32_t word[4] = {w.x, w.y, w.z, w.w};
  float s = 0.f;
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    const float4 a = v[swz(2 * c + q)];
    s = fmaf(__uint_as_float(word[2 * q] << 16), a.x, s);
    s = fmaf(__uint_as_float(word[2 * q] & 0xffff0000u), a.y, s);
    s = fmaf(__uint_as_float(word[2 * q + 1] << 16), a.z, s);
    s = fmaf(__uint_as_float(word[2 * q + 1] & 0xffff0000u), a.w, s);
  }
  return s;
}

// Loads the 16-byte chunks c0 + 32 u (u < kUnroll) of each weight row w[i] (zeros past nch).
template <int NI, int kUnroll>
__device__ __forceinline__ void warp_dots_load(const uint4* const (&w)[NI], int nch, int c0,
                                               uint4 (&wv)[kUnroll][NI]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int c = c0 + 32 * u;
#pragma unroll
    for (int i = 0; i < NI; ++i) wv[u][i] = c < nch ? __ldg(w[i] + c) : make_uint4(0, 0, 0, 0);
  }
}

// NI dot products of nch 16-byte chunks each (weight row w[i], staged vector v[i]); every lane
// returns the full sums. All 32 lanes must call it. With preloaded, wv already holds the first
// batch (warp_dots_load at c0 = lane), issued before the caller staged v.
template <int NI, int kUnroll>
__device__ __forceinline__ void warp_dots(const uint4* const (&w)[NI], const float4* const (&v)[NI],
                                          int nch, int lane, float (&out)[NI],
                                          uint4 (&wv)[kUnroll][NI], bool preloaded) {
  float acc[NI];
#pragma unroll
  for (int i = 0; i < NI; ++i) acc[i] = 0.f;
  for (int c0 = lane; c0 < nch; c0 += 32 * kUnroll) {
    if (!preloaded || c0 != lane) warp_dots_load<NI, kUnroll>(w, nch, c0, wv);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * u;
      if (c >= nch) break;
#pragma unroll
      for (int i = 0; i < NI; ++i) acc[i] += chunk_dot(wv[u][i], v[i], c);
    }
  }
#pragma unroll
  for (int i = 0; i < NI; ++i) out[i] = warp_sum(acc[i]);
}

// Four packed bf16 as floats (unpacked by shifts).
__device__ __forceinline__ float4 bf16x4_to_float4(uint2 raw) {
  return make_float4(__uint_as_float(raw.x << 16), __uint_as_float(raw.x & 0xffff0000u),
                     __uint_as_float(raw.y << 16), __uint_as_float(raw.y & 0xffff0000u));
}

// Four consecutive values as floats: bf16 (unpacked by shifts) or fp32.
template <typename Src>
__device__ __forceinline__ float4 load4f(const Src* at) {
  if constexpr (sizeof(Src) == 2) {
    return bf16x4_to_float4(*reinterpret_cast<const uint2*>(at));
  } else {
    return *reinterpret_cast<const float4*>(at);
  }
}

// Stages rows r < nrows with bit r of `live` set (len values each, row r at src + r * len, bf16
// or fp32, rounded to bf16) into swizzled float4 slots at dst + r * dst_stride. kBatch float4s
// per thread are loaded before any is stored, so staging costs ~one L2 round trip.
template <typename Src, int kBatch = 8>
__device__ __forceinline__ void stage_rows(const Src* src, int nrows, int len, uint32_t live,
                                           float4* dst, int dst_stride, int tid) {
  const int per = len / 4, total = nrows * per;
  for (int s0 = tid; s0 < total; s0 += kThreads * kBatch) {
    float4 f[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int s = s0 + b * kThreads, r = s / per;
      if (s >= total || !((live >> r) & 1u)) continue;
      f[b] = load4f(src + static_cast<int64_t>(r) * len + 4 * (s % per));
      if constexpr (sizeof(Src) == 4)
        f[b] = make_float4(bf16r(f[b].x), bf16r(f[b].y), bf16r(f[b].z), bf16r(f[b].w));
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int s = s0 + b * kThreads, r = s / per;
      if (s < total && ((live >> r) & 1u)) dst[r * dst_stride + swz(s % per)] = f[b];
    }
  }
}

// Weights of unit u of token t: routed expert (local id e) or shared slice v = u - k.
struct Unit {
  bool valid;
  float weight;
};
__device__ __forceinline__ Unit unit_of(const MoeSmallParams& p, int t, int u, int64_t* e_out) {
  if (u >= p.top_k) {
    *e_out = u - p.top_k;
    return {true, 1.f};
  }
  const int64_t e = p.topk_ids[t * p.top_k + u] - p.expert_begin;
  *e_out = e;
  return {e >= 0 && e < p.num_experts, p.topk_weights[t * p.top_k + u]};
}

// Unit u's weight rows: routed expert e or shared slice e (rows of [rows, cols] matrices, byte
// pointers at the row's first used column; FP8 block-scale row of the row's 128-row block).
struct UnitRows {
  const uint8_t* base;  // row 0 of the gate (up kernel) or of the down slice
  int64_t row_bytes;    // bytes between consecutive rows
  const float* scale;   // FP8: scales of row block 0, then + (row / 128) * scale_ld
  int64_t scale_ld;
};
__device__ __forceinline__ UnitRows down_rows_of(const MoeSmallParams& p, bool shared, int64_t e,
                                                 int64_t elem) {
  const int64_t H = p.hidden, I = p.inter, Is = p.num_shared * I;
  if (shared)
    return {static_cast<const uint8_t*>(p.shared_down) + e * I * elem, Is * elem,
            p.shared_down_scale ? p.shared_down_scale + e * I / 128 : nullptr, Is / 128};
  return {static_cast<const uint8_t*>(p.down) + e * H * I * elem, I * elem,
          p.down_scale ? p.down_scale + e * (H / 128) * (I / 128) : nullptr, I / 128};
}

// Item i0 + h of a down CTA whose output rows start at n0 (items = its 8-row groups x units; an
// index past them stands for item i0 again): unit u = item % units of group item / units, whether
// it adds anything (in range, live, rows below H), and its weight rows from the group's first
// (clamped to H - 8 so that the pointers stay inside the matrix when it adds nothing).
struct DownItem {
  bool ok;
  int u;
  UnitRows rows;
  int64_t row;
};
__device__ __forceinline__ DownItem down_item(const MoeSmallParams& p, int t, int i0, int h,
                                              int items, int units, int64_t n0, uint32_t live,
                                              int64_t elem) {
  const int it = i0 + h < items ? i0 + h : i0;
  const int gi = it / units, u = it % units;
  const int64_t nb = n0 + gi * 8;  // the group's first row (H % 8 == 0: all 8 exist)
  int64_t e = 0;
  (void)unit_of(p, t, u, &e);
  const bool ok = i0 + h < items && nb < p.hidden && ((live >> u) & 1u);
  const bool shared = u >= p.top_k;
  return {ok, u, down_rows_of(p, shared, ok || shared ? e : 0, elem),
          nb < p.hidden ? nb : p.hidden - 8};
}

// The dots of a warp's items i0 .. i0 + NI - 1 (lanes g == 0 hold rows 2 t4 and 2 t4 + 1 of each)
// into part[row][units] for combine_rows; an item that adds nothing stores zeros.
template <int NI>
__device__ __forceinline__ void store_item_dots(float* part, int i0, int items, int units, int t4,
                                                const bool (&ok)[NI], const float (&acc)[NI][2]) {
#pragma unroll
  for (int h = 0; h < NI; ++h) {
    const int it = i0 + h;
    if (it >= items) continue;
    const int gi = it / units, u = it % units;
    for (int e2 = 0; e2 < 2; ++e2)
      part[(gi * 8 + 2 * t4 + e2) * units + u] = ok[h] ? acc[h][e2] : 0.f;
  }
}

// What combine_rows adds to, read by thread rl < rows before the down launch's wait: the
// residual row is final when the launch starts (its writers, o_proj or a norm, are three or more
// launches back on the stream), so its L2 round trip leaves the launch's tail. The shared
// output (a joined branch's) is read after the wait: read before it, it changed greedy tokens in
// two GPU tests on the H200, so the branch is not always done when the launch starts.
struct CombineEarly {
  float residual = 0.f;
};
__device__ __forceinline__ CombineEarly combine_early(const MoeSmallParams& p, int t, int64_t n0,
                                                      int rows) {
  CombineEarly c;
  const int64_t n = n0 + threadIdx.x;
  if (static_cast<int>(threadIdx.x) < rows && n < p.hidden)
    c.residual = __ldcg(p.residual + t * p.hidden + n);
  return c;
}

// Row n0 + rl of the output, rl < rows: combine as launch_moe_combine does (sum_j w_j *
// bf16(y_j) + bf16(shared), rounded to bf16) from part[rl][units], added to the residual row
// combine_early read.
__device__ __forceinline__ void combine_rows(const MoeSmallParams& p, int t, int units,
                                             const float* part, int64_t n0, int rows,
                                             const CombineEarly& early) {
  const int64_t H = p.hidden, K = p.top_k;
  // One pass: thread rl holds row rl's early value (the launches have at most 32 rows a CTA).
  static_assert(kThreads >= 32);
  for (int rl = threadIdx.x; rl < rows; rl += kThreads) {
    const int64_t n = n0 + rl;
    if (n >= H) continue;
    float s = 0.f;
    for (int u = 0; u < K; ++u) {
      int64_t e = 0;
      const Unit un = unit_of(p, t, u, &e);
      if (un.valid) s += un.weight * bf16r(part[rl * units + u]);
    }
    if (units > K) {
      float sh = 0.f;
      for (int u = static_cast<int>(K); u < units; ++u) sh += part[rl * units + u];
      s += bf16r(sh);
    } else if (p.shared_out != nullptr) {
      s += __bfloat162float(p.shared_out[t * H + n]);
    }
    p.residual[t * H + n] = early.residual + bf16r(s);
  }
}

// Blocks b0 .. b0 + B - 1 (those below kb) of NG 8-row groups' weights for the tensor-core row
// dots, C 64-byte chunks per 128-wide k block (FP8 2, BF16 4): lane (g, t) loads its row g's
// 16-byte pieces t * 16 + 64 j of each block.
template <int NG, int B, int C>
__device__ __forceinline__ void load_blocks(const uint8_t* const (&w)[NG], int b0, int kb,
                                            uint4 (&wv)[B][NG][C]) {
#pragma unroll
  for (int u = 0; u < B; ++u)
#pragma unroll
    for (int i = 0; i < NG; ++i)
#pragma unroll
      for (int h = 0; h < C; ++h)
        wv[u][i][h] = b0 + u < kb ? __ldg(reinterpret_cast<const uint4*>(
                                        w[i] + static_cast<int64_t>((b0 + u) * C + h) * 64))
                                  : make_uint4(0, 0, 0, 0);
}

}  // namespace

// The down launch takes the BF16 tensor-core path (moe_small_down_bf16.cu) for these params:
// BF16 weights with whole 128-wide k blocks.
__host__ __device__ inline bool down_bf16_mma(const MoeSmallParams& p) {
  return !p.fp8 && p.inter % 128 == 0;
}
// That launch for p (down_bf16_mma(p)) and its `units` units per token.
void launch_moe_small_down_bf16(const MoeSmallParams& p, int units, cudaStream_t stream);

}  // namespace wideserve::cuda
