#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/gemm/fp8_quant.cuh"
#include "backend/cuda/ops/bf16_vec.cuh"
#include "backend/cuda/ops/block_sum.cuh"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

constexpr int kThreads = 256;

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

__global__ void embedding_kernel(EmbeddingParams p) {
  KernelTrace kt_(TraceKernel::kEmbedding);
  kt_.wait();
  pdl_launch_dependents();
  const int64_t t = blockIdx.x;
  const __nv_bfloat16* src = p.table + static_cast<int64_t>(p.ids[t]) * p.dim;
  for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) {
    __nv_bfloat16 v = src[i];
    if (p.out) p.out[t * p.dim + i] = v;
    if (p.residual) p.residual[t * p.dim + i] = __bfloat162float(v);
  }
}

// Eight elements per thread and step: one 16-byte load of the row, 16-byte bf16 and 2 x 16-byte
// fp32 stores (dim % 8 == 0, aligned table and outputs).
__global__ void embedding_vec_kernel(EmbeddingParams p) {
  KernelTrace kt_(TraceKernel::kEmbedding);
  kt_.wait();
  pdl_launch_dependents();
  const int64_t t = blockIdx.x, n8 = p.dim / 8;
  const uint4* src =
      reinterpret_cast<const uint4*>(p.table + static_cast<int64_t>(p.ids[t]) * p.dim);
  for (int64_t c = threadIdx.x; c < n8; c += blockDim.x) {
    const uint4 raw = src[c];
    if (p.out) reinterpret_cast<uint4*>(p.out + t * p.dim)[c] = raw;
    if (p.residual) {
      float4* r = reinterpret_cast<float4*>(p.residual + t * p.dim) + 2 * c;
      bf16x8_to_float4x2(raw, r[0], r[1]);
    }
  }
}

// Rotates the pair (a, b) = (x[2i], x[2i+1]) and writes (out[i], out[half+i]).
__device__ void rope_pair(const RopeTable& rt, int64_t pos, int i, float a, float b, float* ra,
                          float* rb) {
  float s, c;
  sincosf(rt.inv_freq[i] * static_cast<float>(pos), &s, &c);
  c *= rt.attention_factor;
  s *= rt.attention_factor;
  *ra = a * c - b * s;
  *rb = b * c + a * s;
}

// Token t's kv_a row (x) and its cache row (dst).
struct LatentRow {
  const __nv_bfloat16* x;
  __nv_bfloat16* dst;
};

// Stores the RMSNorm of token t's first kv_lora latent columns into its cache slot (the whole
// block calls it); the rope tail is the caller's.
__device__ LatentRow store_latent_norm(const LatentPrepParams& p, int64_t t) {
  const int64_t row = p.kv_lora + p.rope.rope_dim;
  const __nv_bfloat16* x = p.kv_a + t * (p.kv_a_stride > 0 ? p.kv_a_stride : row);
  __nv_bfloat16* dst = p.kv_cache + static_cast<int64_t>(p.slot_mapping[t]) * row;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < p.kv_lora; i += blockDim.x) {
    float v = __bfloat162float(x[i]);
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(p.kv_lora) + p.eps);
  for (int64_t i = threadIdx.x; i < p.kv_lora; i += blockDim.x) {
    float n = __bfloat162float(__float2bfloat16(__bfloat162float(x[i]) * inv));
    dst[i] = __float2bfloat16(n * __bfloat162float(p.norm_w[i]));
  }
  return {x, dst};
}

__global__ void latent_prep_kernel(LatentPrepParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t t = blockIdx.x;
  const auto [x, dst] = store_latent_norm(p, t);
  const int half = static_cast<int>(p.rope.rope_dim / 2);
  const int64_t pos = p.positions[t];
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float ra, rb;
    rope_pair(p.rope, pos, i, __bfloat162float(x[p.kv_lora + 2 * i]),
              __bfloat162float(x[p.kv_lora + 2 * i + 1]), &ra, &rb);
    dst[p.kv_lora + i] = __float2bfloat16(ra);
    dst[p.kv_lora + half + i] = __float2bfloat16(rb);
  }
}

__global__ void query_rope_kernel(QueryRopeParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t t = blockIdx.x;
  const int half = static_cast<int>(p.rope.rope_dim / 2);
  const int64_t pos = p.positions[t];
  for (int64_t j = threadIdx.x; j < p.heads * half; j += blockDim.x) {
    const int64_t h = j / half;
    const int i = static_cast<int>(j % half);
    const __nv_bfloat16* q = p.q + (t * p.heads + h) * p.q_stride + p.nope;
    __nv_bfloat16* o = p.out + (t * p.heads + h) * p.out_stride + p.out_col;
    float ra, rb;
    rope_pair(p.rope, pos, i, __bfloat162float(q[2 * i]), __bfloat162float(q[2 * i + 1]), &ra, &rb);
    o[i] = __float2bfloat16(ra);
    o[half + i] = __float2bfloat16(rb);
  }
}

constexpr int kPrepHeadsPerCta = 32;

// blockIdx = (token, block): blocks below the last rope 32 heads of the query each, the last one
// stores the latent row, so its norm runs beside the query work. Angles of the token's position
// go to shared memory, computed as rope_pair computes them, so the outputs equal
// latent_prep_kernel's and query_rope_kernel's.
__global__ void mla_rope_prep_kernel(LatentPrepParams lp, QueryRopeParams qp) {
  KernelTrace kt_(TraceKernel::kRopePrep);
  extern __shared__ float sc[];  // [half] cos, then [half] sin
  const int64_t t = blockIdx.x;
  const int half = static_cast<int>(qp.rope.rope_dim / 2);
  // Positions come from the host (no kernel of the step writes them) and inv_freq is constant:
  // the angles are made before waiting, under the previous kernel's tail.
  const int64_t pos = qp.positions[t];
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float sn, cs;
    sincosf(qp.rope.inv_freq[i] * static_cast<float>(pos), &sn, &cs);
    sc[i] = cs * qp.rope.attention_factor;
    sc[half + i] = sn * qp.rope.attention_factor;
  }
  kt_.wait();
  pdl_launch_dependents();
  __syncthreads();
  if (blockIdx.y + 1 < gridDim.y) {
    const int64_t h0 = static_cast<int64_t>(blockIdx.y) * kPrepHeadsPerCta;
    const int64_t hn = min(static_cast<int64_t>(kPrepHeadsPerCta), qp.heads - h0);
    for (int64_t j = threadIdx.x; j < hn * half; j += blockDim.x) {
      const int64_t h = h0 + j / half;
      const int i = static_cast<int>(j % half);
      const __nv_bfloat16* q = qp.q + (t * qp.heads + h) * qp.q_stride + qp.nope;
      __nv_bfloat16* o = qp.out + (t * qp.heads + h) * qp.out_stride + qp.out_col;
      const float a = __bfloat162float(q[2 * i]), b = __bfloat162float(q[2 * i + 1]);
      o[i] = __float2bfloat16(a * sc[i] - b * sc[half + i]);
      o[half + i] = __float2bfloat16(b * sc[i] + a * sc[half + i]);
    }
    return;
  }
  const auto [x, dst] = store_latent_norm(lp, t);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float a = __bfloat162float(x[lp.kv_lora + 2 * i]);
    const float b = __bfloat162float(x[lp.kv_lora + 2 * i + 1]);
    dst[lp.kv_lora + i] = __float2bfloat16(a * sc[i] - b * sc[half + i]);
    dst[lp.kv_lora + half + i] = __float2bfloat16(b * sc[i] + a * sc[half + i]);
  }
}

// HF: act_fn(gate) * up in bf16: silu rounds to bf16 before the product.
__device__ __forceinline__ __nv_bfloat16 silu_mul_one(float g, float u) {
  const float s = __bfloat162float(__float2bfloat16(g / (1.f + __expf(-g))));
  return __float2bfloat16(s * u);
}

__global__ void silu_mul_kernel(SiluMulParams p) {
  KernelTrace kt_(TraceKernel::kSiluMul);
  kt_.wait();
  pdl_launch_dependents();
  const int64_t n = p.rows * p.inter;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = j / p.inter, i = j % p.inter;
    p.out[j] = silu_mul_one(__bfloat162float(p.x[r * 2 * p.inter + i]),
                            __bfloat162float(p.x[r * 2 * p.inter + p.inter + i]));
  }
}

// Eight outputs per thread with 16-byte accesses (inter % 8 == 0, aligned), one thread per 8
// outputs, no grid-stride loop: with q set (inter % 128 == 0) the 16 threads of a 128-column
// group reduce its amax by shuffles and write the FP8 copy as launch_quantize_fp8 would.
__global__ void silu_mul_vec_kernel(SiluMulParams p) {
  KernelTrace kt_(TraceKernel::kSiluMul);
  kt_.wait();
  pdl_launch_dependents();
  const int64_t n8 = p.rows * p.inter / 8, per_row = p.inter / 8;
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const bool active = j < n8;  // inactive lanes still join the shuffles
  const int64_t r = active ? j / per_row : 0, i = active ? (j % per_row) * 8 : 0;
  float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (active) {
    const uint4 graw = *reinterpret_cast<const uint4*>(p.x + r * 2 * p.inter + i);
    const uint4 uraw = *reinterpret_cast<const uint4*>(p.x + r * 2 * p.inter + p.inter + i);
    const auto* gb = reinterpret_cast<const __nv_bfloat16*>(&graw);
    const auto* ub = reinterpret_cast<const __nv_bfloat16*>(&uraw);
    uint4 oraw;
    auto* ob = reinterpret_cast<__nv_bfloat16*>(&oraw);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      ob[e] = silu_mul_one(__bfloat162float(gb[e]), __bfloat162float(ub[e]));
      v[e] = __bfloat162float(ob[e]);
    }
    *reinterpret_cast<uint4*>(p.out + r * p.inter + i) = oraw;
  }
  if (p.q == nullptr) return;
  float amax = 0.f;
#pragma unroll
  for (int e = 0; e < 8; ++e) amax = fmaxf(amax, fabsf(v[e]));
#pragma unroll
  for (int off = 8; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  if (!active) return;
  const float scale = fp8_group_scale(amax);
  uint8_t q8[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) q8[e] = fp8_e4m3_of(v[e], scale);
  *reinterpret_cast<uint2*>(reinterpret_cast<uint8_t*>(p.q) + r * p.inter + i) = fp8_pack8(q8);
  if (i % 128 == 0) p.q_scale[(i / 128) * p.rows + r] = scale;
}

__global__ void add_residual_kernel(AddResidualParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t n = p.rows * p.dim;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p.residual[j] += __bfloat162float(p.x[j]);
}

// Eight elements per thread: one 16-byte bf16 load, two 16-byte fp32 loads and stores.
__global__ void add_residual_vec_kernel(AddResidualParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t n8 = p.rows * p.dim / 8;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n8;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float4* r = reinterpret_cast<float4*>(p.residual + 8 * j);
    float4 a = r[0], b = r[1];
    add_bf16x8(*reinterpret_cast<const uint4*>(p.x + 8 * j), a, b);
    r[0] = a;
    r[1] = b;
  }
}

__device__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from (seed, i).
__device__ float uniform01(uint64_t seed, int64_t i) {
  return static_cast<float>(mix64(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i)) >> 40) *
         (1.0f / 16777216.0f);
}

__global__ void fill_bf16_kernel(__nv_bfloat16* out, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16((uniform01(seed, i) * 2.f - 1.f) * scale);
}

__global__ void fill_fp8_kernel(__nv_fp8_e4m3* out, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __nv_fp8_e4m3((uniform01(seed, i) * 2.f - 1.f) * scale);
}

__global__ void fill_f32_kernel(float* out, int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = lo + uniform01(seed, i) * (hi - lo);
}

int grid_for(int64_t n) {
  int64_t g = (n + kThreads - 1) / kThreads;
  return static_cast<int>(g < 1 ? 1 : (g > 65536 ? 65536 : g));
}

std::string dims(int64_t a, int64_t b) {
  return std::to_string(a) + "x" + std::to_string(b);
}

}  // namespace

void launch_embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.tokens == 0) return;
  WS_CUDA_REQUIRE(p.ids && p.table && (p.out || p.residual) && p.dim > 0,
                  "embedding: null pointer or empty dim " + dims(p.tokens, p.dim));
  if (p.dim % 8 == 0 && aligned16(p.table) && (p.out == nullptr || aligned16(p.out)) &&
      (p.residual == nullptr || aligned16(p.residual))) {
    launch_pdl(embedding_vec_kernel, dim3(static_cast<unsigned>(p.tokens)), dim3(kThreads), 0,
               stream, p);
    return;
  }
  launch_pdl(embedding_kernel, dim3(static_cast<unsigned>(p.tokens)), dim3(kThreads), 0, stream, p);
}

void launch_latent_prep(const LatentPrepParams& p, cudaStream_t stream) {
  if (p.tokens == 0) return;
  WS_CUDA_REQUIRE(p.kv_a && p.norm_w && p.positions && p.slot_mapping && p.kv_cache &&
                      p.rope.inv_freq && p.rope.rope_dim % 2 == 0 && p.kv_lora > 0 &&
                      (p.kv_a_stride == 0 || p.kv_a_stride >= p.kv_lora + p.rope.rope_dim),
                  "latent_prep: bad arguments");
  launch_pdl(latent_prep_kernel, dim3(static_cast<unsigned>(p.tokens)), dim3(kThreads), 0, stream,
             p);
}

void launch_query_rope(const QueryRopeParams& p, cudaStream_t stream) {
  if (p.tokens == 0) return;
  WS_CUDA_REQUIRE(p.q && p.out && p.positions && p.rope.inv_freq && p.rope.rope_dim % 2 == 0 &&
                      p.q_stride >= p.nope + p.rope.rope_dim &&
                      p.out_stride >= p.out_col + p.rope.rope_dim,
                  "query_rope: bad arguments");
  launch_pdl(query_rope_kernel, dim3(static_cast<unsigned>(p.tokens)), dim3(kThreads), 0, stream,
             p);
}

void launch_mla_rope_prep(const LatentPrepParams& lp, const QueryRopeParams& qp,
                          cudaStream_t stream) {
  WS_CUDA_REQUIRE(lp.tokens == qp.tokens && lp.positions == qp.positions &&
                      lp.rope.inv_freq == qp.rope.inv_freq &&
                      lp.rope.rope_dim == qp.rope.rope_dim &&
                      lp.rope.attention_factor == qp.rope.attention_factor,
                  "mla_rope_prep: latent and query parts disagree on tokens, positions or rope");
  if (lp.tokens == 0) return;
  WS_CUDA_REQUIRE(lp.kv_a && lp.norm_w && lp.positions && lp.slot_mapping && lp.kv_cache &&
                      lp.rope.inv_freq && lp.rope.rope_dim % 2 == 0 && lp.kv_lora > 0 &&
                      (lp.kv_a_stride == 0 || lp.kv_a_stride >= lp.kv_lora + lp.rope.rope_dim),
                  "mla_rope_prep: bad latent arguments");
  WS_CUDA_REQUIRE(qp.q && qp.out && qp.heads > 0 && qp.q_stride >= qp.nope + qp.rope.rope_dim &&
                      qp.out_stride >= qp.out_col + qp.rope.rope_dim,
                  "mla_rope_prep: bad query arguments");
  const unsigned head_blocks =
      static_cast<unsigned>((qp.heads + kPrepHeadsPerCta - 1) / kPrepHeadsPerCta) + 1;
  const size_t smem = static_cast<size_t>(qp.rope.rope_dim) * sizeof(float);
  launch_pdl(mla_rope_prep_kernel, dim3(static_cast<unsigned>(lp.tokens), head_blocks),
             dim3(kThreads), smem, stream, lp, qp);
}

static bool silu_mul_vec_ok(const SiluMulParams& p) {
  return p.inter % 8 == 0 && aligned16(p.x) && aligned16(p.out);
}

bool silu_mul_fp8_supported(const SiluMulParams& p) {
  return silu_mul_vec_ok(p) && p.inter % 128 == 0 && reinterpret_cast<uintptr_t>(p.q) % 8 == 0;
}

void launch_silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  WS_CUDA_REQUIRE(p.x && p.out && p.inter > 0 && p.rows > 0, "silu_mul: bad arguments");
  WS_CUDA_REQUIRE((p.q == nullptr) == (p.q_scale == nullptr),
                  "silu_mul: q and q_scale go together");
  WS_CUDA_REQUIRE(p.q == nullptr || silu_mul_fp8_supported(p),
                  "silu_mul: the FP8 copy needs inter % 128 == 0 and aligned buffers, inter " +
                      std::to_string(p.inter));
  if (silu_mul_vec_ok(p)) {
    const int64_t blocks = (p.rows * p.inter / 8 + kThreads - 1) / kThreads;
    WS_CUDA_REQUIRE(blocks < (int64_t{1} << 31), "silu_mul: too many rows");
    launch_pdl(silu_mul_vec_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream,
               p);
    return;
  }
  launch_pdl(silu_mul_kernel, dim3(grid_for(p.rows * p.inter)), dim3(kThreads), 0, stream, p);
}

void launch_add_residual(const AddResidualParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  WS_CUDA_REQUIRE(p.x && p.residual && p.dim > 0, "add_residual: bad arguments");
  if (p.dim % 8 == 0 && aligned16(p.x) && aligned16(p.residual)) {
    launch_pdl(add_residual_vec_kernel, dim3(grid_for(p.rows * p.dim / 8)), dim3(kThreads), 0,
               stream, p);
    return;
  }
  launch_pdl(add_residual_kernel, dim3(grid_for(p.rows * p.dim)), dim3(kThreads), 0, stream, p);
}

void launch_fill_random_bf16(__nv_bfloat16* out, int64_t n, uint64_t seed, float scale,
                             cudaStream_t stream) {
  if (n == 0) return;
  fill_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed, scale);
  WS_CUDA_CHECK_LAUNCH();
}

void launch_fill_random_fp8(void* out, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n == 0) return;
  fill_fp8_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<__nv_fp8_e4m3*>(out), n, seed,
                                                        scale);
  WS_CUDA_CHECK_LAUNCH();
}

void launch_fill_random_f32(float* out, int64_t n, uint64_t seed, float lo, float hi,
                            cudaStream_t stream) {
  if (n == 0) return;
  fill_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed, lo, hi);
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
