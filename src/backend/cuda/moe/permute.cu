// Row-wise MoE kernels around the grouped GEMMs: gather of hidden rows into the expert-sorted
// layout (optionally FP8 1x128 quantized), SiLU-and-mul (optionally FP8), and the weighted combine
// back to token order. One block per row, 16-byte vectors (8 bf16) per thread; an FP8 group of
// 128 columns is 16 consecutive lanes, so its amax is a 16-lane shuffle reduction.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/gemm/fp8_quant.cuh"
#include "backend/cuda/moe/moe.h"

namespace wideserve::cuda {
namespace {

constexpr int kThreads = 128;
constexpr unsigned kFull = 0xffffffffu;

struct alignas(16) Bf16x8 {
  __nv_bfloat162 v[4];
};

__device__ __forceinline__ void to_float8(const Bf16x8& x, float* f) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(x.v[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ Bf16x8 from_float8(const float* f) {
  Bf16x8 x;
#pragma unroll
  for (int i = 0; i < 4; ++i) x.v[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return x;
}

// Quantizes 8 values of one 128-column group (16 lanes share a group) and writes q + scale when
// `write`. The same rule as launch_quantize_fp8: scale = max(amax, 1e-10) / 448, q = x / scale.
// All 32 lanes must call it (shuffles); groups never straddle `write` (dims % 128 == 0).
__device__ __forceinline__ void quantize8(const float* f, __nv_fp8_e4m3* q, float* scale_slot,
                                          bool group_leader, bool write) {
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(f[i]));
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, o));
  const float scale = fp8_group_scale(amax);
  __align__(8) __nv_fp8_e4m3 out[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) out[i] = __nv_fp8_e4m3(f[i] / scale);  // saturating (satfinite)
  if (!write) return;
  *reinterpret_cast<uint2*>(q) = *reinterpret_cast<const uint2*>(out);
  if (group_leader) *scale_slot = scale;
}

__global__ void gather_kernel(MoeGatherParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t r = blockIdx.x;
  if (r >= *p.num_rows) return;
  const int32_t slot = p.sorted_to_slot[r];
  if (slot < 0) return;
  const int64_t t = slot / p.top_k, H = p.hidden;
  const Bf16x8* src = reinterpret_cast<const Bf16x8*>(p.x + t * H);
  // Uniform trip count (H % 1024 need not hold): lanes past the end still join the shuffles.
  for (int64_t c0 = 0; c0 < H; c0 += kThreads * 8) {
    const int64_t c = c0 + threadIdx.x * 8;
    const bool in = c < H;
    Bf16x8 v{};
    if (in) v = src[c / 8];
    if (p.out_bf16 && in) reinterpret_cast<Bf16x8*>(p.out_bf16 + r * H)[c / 8] = v;
    if (p.out_fp8) {
      float f[8];
      to_float8(v, f);
      quantize8(f, p.out_fp8 + r * H + c, p.out_scales + r * (H / 128) + c / 128,
                threadIdx.x % 16 == 0, in);
    }
  }
}

__device__ __forceinline__ float silu(float g) {
  return g / (1.0f + expf(-g));
}

__global__ void silu_and_mul_kernel(SiluAndMulParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t r = blockIdx.x;
  if (p.num_rows && r >= *p.num_rows) return;
  const int64_t I = p.inter;
  const __nv_bfloat16* gate = p.x + r * 2 * I;
  const __nv_bfloat16* up = gate + I;
  for (int64_t c0 = 0; c0 < I; c0 += kThreads * 8) {
    const int64_t c = c0 + threadIdx.x * 8;
    const bool in = c < I;
    float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (in) {
      float g[8], u[8];
      to_float8(*reinterpret_cast<const Bf16x8*>(gate + c), g);
      to_float8(*reinterpret_cast<const Bf16x8*>(up + c), u);
#pragma unroll
      for (int i = 0; i < 8; ++i) f[i] = silu(g[i]) * u[i];
      if (p.out_bf16) *reinterpret_cast<Bf16x8*>(p.out_bf16 + r * I + c) = from_float8(f);
    }
    if (p.out_fp8)
      quantize8(f, p.out_fp8 + r * I + c, p.out_scales + r * (I / 128) + c / 128,
                threadIdx.x % 16 == 0, in);
  }
}

// One thread per 8 columns of a token, grid (tokens, column blocks). With kMaxK > 0 (top_k <=
// kMaxK) a thread issues all its expert rows' loads before it sums them, in the same order as the
// loop of the general case (j = 0..k-1, then the shared expert), so both give the same bits.
template <int kMaxK>
__global__ void combine_kernel(MoeCombineParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t t = blockIdx.x, H = p.hidden, K = p.top_k;
  const int64_t c = (blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x) * 8;
  if (c >= H) return;
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if constexpr (kMaxK > 0) {
    uint4 raw[kMaxK];
    float w[kMaxK];
    int32_t row[kMaxK];
#pragma unroll
    for (int j = 0; j < kMaxK; ++j) {
      row[j] = j < K ? p.slot_to_sorted[t * K + j] : -1;
      w[j] = row[j] >= 0 ? p.topk_weights[t * K + j] : 0.f;
      if (row[j] >= 0) raw[j] = *reinterpret_cast<const uint4*>(p.y + row[j] * H + c);
    }
#pragma unroll
    for (int j = 0; j < kMaxK; ++j) {
      if (row[j] < 0) continue;
      float y[8];
      to_float8(*reinterpret_cast<const Bf16x8*>(&raw[j]), y);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += w[j] * y[i];
    }
  } else {
    for (int64_t j = 0; j < K; ++j) {
      const int32_t row = p.slot_to_sorted[t * K + j];
      if (row < 0) continue;
      const float w = p.topk_weights[t * K + j];
      float y[8];
      to_float8(*reinterpret_cast<const Bf16x8*>(p.y + row * H + c), y);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += w * y[i];
    }
  }
  if (p.shared) {
    float sh[8];
    to_float8(*reinterpret_cast<const Bf16x8*>(p.shared + t * H + c), sh);
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] += sh[i];
  }
  *reinterpret_cast<Bf16x8*>(p.out + t * H + c) = from_float8(acc);
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

}  // namespace

void launch_moe_gather(const MoeGatherParams& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(
      p.hidden > 0 && p.hidden % 8 == 0,
      "moe gather: hidden must be a positive multiple of 8, got " + std::to_string(p.hidden));
  WS_CUDA_REQUIRE(p.out_bf16 || p.out_fp8, "moe gather: no output");
  WS_CUDA_REQUIRE(!p.out_fp8 || (p.hidden % 128 == 0 && p.out_scales),
                  "moe gather fp8: hidden % 128 == 0 and scales required");
  WS_CUDA_REQUIRE(p.max_rows >= 0 && p.max_rows <= p.num_tokens * p.top_k && p.max_rows < (1 << 30),
                  "moe gather: max_rows " + std::to_string(p.max_rows));
  if (p.max_rows == 0) return;
  WS_CUDA_REQUIRE(p.x && p.sorted_to_slot && p.num_rows && aligned16(p.x) &&
                      (!p.out_bf16 || aligned16(p.out_bf16)) &&
                      (!p.out_fp8 || aligned16(p.out_fp8)),
                  "moe gather: null or misaligned pointer");
  launch_pdl(gather_kernel, dim3(static_cast<unsigned>(p.max_rows)), dim3(kThreads), 0, stream, p);
}

void launch_silu_and_mul(const SiluAndMulParams& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(
      p.inter > 0 && p.inter % 8 == 0,
      "silu_and_mul: inter must be a positive multiple of 8, got " + std::to_string(p.inter));
  WS_CUDA_REQUIRE(p.out_bf16 || p.out_fp8, "silu_and_mul: no output");
  WS_CUDA_REQUIRE(!p.out_fp8 || (p.inter % 128 == 0 && p.out_scales),
                  "silu_and_mul fp8: inter % 128 == 0 and scales required");
  WS_CUDA_REQUIRE(p.rows >= 0 && p.rows < (1 << 30), "silu_and_mul: rows");
  if (p.rows == 0) return;
  WS_CUDA_REQUIRE(p.x && aligned16(p.x) && (!p.out_bf16 || aligned16(p.out_bf16)) &&
                      (!p.out_fp8 || aligned16(p.out_fp8)),
                  "silu_and_mul: null or misaligned pointer");
  launch_pdl(silu_and_mul_kernel, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0, stream,
             p);
}

void launch_moe_combine(const MoeCombineParams& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(
      p.hidden > 0 && p.hidden % 8 == 0 && p.top_k > 0,
      "moe combine: hidden must be a positive multiple of 8, got " + std::to_string(p.hidden));
  WS_CUDA_REQUIRE(p.num_tokens >= 0 && p.num_tokens < (1 << 30), "moe combine: num_tokens");
  if (p.num_tokens == 0) return;
  WS_CUDA_REQUIRE(p.y && p.slot_to_sorted && p.topk_weights && p.out && aligned16(p.y) &&
                      aligned16(p.out) && (!p.shared || aligned16(p.shared)),
                  "moe combine: null or misaligned pointer");
  const dim3 grid(static_cast<unsigned>(p.num_tokens),
                  static_cast<unsigned>((p.hidden / 8 + kThreads - 1) / kThreads));
  launch_pdl(p.top_k <= 8 ? combine_kernel<8> : combine_kernel<0>, grid, dim3(kThreads), 0, stream,
             p);
}

}  // namespace wideserve::cuda
