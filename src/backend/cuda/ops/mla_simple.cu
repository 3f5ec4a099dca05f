#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/ops/mla_simple.h"

namespace wideserve::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kPerLane = 16;  // latent <= 32 * 16

__global__ void mla_simple_kernel(MlaSimpleParams p) {
  const int64_t t = blockIdx.x, h = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = p.latent + p.rope;
  const __nv_bfloat16* q = p.q + (t * p.heads + h) * row;
  const int32_t* pages = p.page_table + static_cast<int64_t>(p.token_seq[t]) * p.max_pages;
  const int64_t len = static_cast<int64_t>(p.token_pos[t]) + 1;
  float m = -INFINITY, l = 0.f, acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) acc[i] = 0.f;
  for (int64_t pos = warp; pos < len; pos += kWarps) {
    const int64_t slot =
        static_cast<int64_t>(pages[pos / p.page_size]) * p.page_size + pos % p.page_size;
    const __nv_bfloat16* kv = p.kv_cache + slot * row;
    float s = 0.f;
    for (int64_t i = lane; i < row; i += 32) s += __bfloat162float(q[i]) * __bfloat162float(kv[i]);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    s *= p.softmax_scale;
    const float m_new = fmaxf(m, s);
    const float corr = __expf(m - m_new), e = __expf(s - m_new);
    l = l * corr + e;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t c = lane + 32 * i;
      acc[i] = acc[i] * corr + (c < p.latent ? e * __bfloat162float(kv[c]) : 0.f);
    }
    m = m_new;
  }
  // Merge the warps' partial softmax states.
  __shared__ float sm[kWarps], sl[kWarps], sacc[kWarps][32 * kPerLane];
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) sacc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float gm = -INFINITY;
  for (int w = 0; w < kWarps; ++w) gm = fmaxf(gm, sm[w]);
  float gl = 0.f;
  for (int w = 0; w < kWarps; ++w)
    if (sl[w] > 0.f) gl += sl[w] * __expf(sm[w] - gm);
  __nv_bfloat16* out = p.out + (t * p.heads + h) * p.latent;
  for (int64_t c = threadIdx.x; c < p.latent; c += blockDim.x) {
    float v = 0.f;
    for (int w = 0; w < kWarps; ++w)
      if (sl[w] > 0.f) v += sacc[w][c] * __expf(sm[w] - gm);
    out[c] = __float2bfloat16(v / gl);
  }
}

}  // namespace

void launch_mla_simple(const MlaSimpleParams& p, cudaStream_t stream) {
  if (p.tokens == 0) return;
  WS_CUDA_REQUIRE(p.latent > 0 && p.latent <= 32 * kPerLane && p.heads > 0 && p.page_size > 0,
                  "mla_simple: latent width " + std::to_string(p.latent) + " unsupported");
  WS_CUDA_REQUIRE(p.heads <= 65535, "mla_simple: too many heads");
  dim3 grid(static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.heads));
  mla_simple_kernel<<<grid, 32 * kWarps, 0, stream>>>(p);
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
