// GPU sampling, one 1024-thread block per row; the row stays in global memory (L2) and is read a
// few times, never sorted:
//   A. raw log-softmax statistics (only with out_logprob);
//   B. penalties and bans written into the row (the CPU sampler's processed logits);
//   C. max, first argmax and the number of finite logits; greedy rows stop here;
//   D. top_k: radix select (11+11+10 bits) of the k-th largest logit by count, ties cut by index;
//   E. top_p: the same radix select over the weights exp((x - max) / T) of the kept tokens, by
//      mass, so the smallest prefix of heaviest tokens reaching top_p of the mass is kept;
//   F. min_p: weights below min_p (the max weight is 1) dropped;
//   G. one draw: the first token, in index order, whose cumulative weight exceeds u * total.
// Masses are fixed-point integers (weight * 2^44), so every sum is exact and independent of the
// order of atomics: a row's result depends only on its own inputs (batch-invariant, reproducible).
#include <cfloat>
#include <cmath>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/sampling/sampling.h"

namespace wideserve::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kPer = 4;  // consecutive elements per thread in one tile
constexpr int64_t kTile = int64_t{kThreads} * kPer;
constexpr int kMaxTiles = static_cast<int>(kSampleMaxVocab / kTile);
constexpr float kFixScale = 17592186044416.0f;  // 2^44: weights are in [0, 1]
constexpr int kMaxBins = 2048;

using u64 = unsigned long long;

__host__ __device__ inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Same formula as engine::SamplerState::uniform.
__host__ __device__ inline double uniform_of(uint64_t seed, uint64_t step) {
  const uint64_t bits = mix64(seed ^ mix64(step + 0xD1B54A32D192ED03ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// NaN -> -inf, +inf -> FLT_MAX, -0 -> +0 (so equal values get equal keys).
__device__ __forceinline__ float clean(float x) {
  if (x != x) return -INFINITY;
  if (x == 0.0f) return 0.0f;
  return fminf(x, FLT_MAX);
}

// Order-preserving map of a float to unsigned bits.
__device__ __forceinline__ uint32_t ordered(float x) {
  const uint32_t b = __float_as_uint(x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ u64 to_fixed(float w) {
  return __float2ull_rz(w * kFixScale);
}

struct MaxIdx {
  float v;
  int64_t i;
};
__device__ __forceinline__ MaxIdx better(MaxIdx a, MaxIdx b) {
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

// Online log-sum-exp state: sum of exp(x - m).
struct Lse {
  float m;
  double s;
};
__device__ __forceinline__ Lse merge(Lse a, Lse b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = fmaxf(a.m, b.m);
  return {m, a.s * exp(static_cast<double>(a.m - m)) + b.s * exp(static_cast<double>(b.m - m))};
}

struct Shared {
  u64 hist[kMaxBins];
  u64 tile_sum[kMaxTiles];
  u64 warp_u64[kWarps];
  MaxIdx warp_max[kWarps];
  Lse warp_lse[kWarps];
  int32_t warp_i32[kWarps];
  // Results broadcast to the block.
  u64 sel_above, sel_at;
  uint32_t sel_bin;
  int64_t loc_tile, loc_idx;
  u64 loc_off;
  MaxIdx max;
  Lse lse;
  int32_t finite;
  float raw_tok;
};

// Block-wide exclusive prefix sum in thread order; *total gets the sum of all.
__device__ u64 block_exclusive_sum(u64 v, u64* total, Shared& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u64 inc = v;
  for (int o = 1; o < 32; o <<= 1) {
    const u64 n = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += n;
  }
  __syncthreads();
  if (lane == 31) s.warp_u64[warp] = inc;
  __syncthreads();
  u64 before = 0, t = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += s.warp_u64[w];
    t += s.warp_u64[w];
  }
  *total = t;
  return before + inc - v;
}

__device__ MaxIdx block_max(MaxIdx v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    MaxIdx n{__shfl_down_sync(0xffffffffu, v.v, o), __shfl_down_sync(0xffffffffu, v.i, o)};
    v = better(v, n);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.warp_max[threadIdx.x >> 5] = v;
  __syncthreads();
  MaxIdx r = s.warp_max[0];
  for (int w = 1; w < kWarps; ++w) r = better(r, s.warp_max[w]);
  return r;
}

__device__ int32_t block_sum_i32(int32_t v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.warp_i32[threadIdx.x >> 5] = v;
  __syncthreads();
  int32_t t = 0;
  for (int w = 0; w < kWarps; ++w) t += s.warp_i32[w];
  return t;
}

__device__ Lse block_lse(Lse v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    Lse n{__shfl_down_sync(0xffffffffu, v.m, o), __shfl_down_sync(0xffffffffu, v.s, o)};
    v = merge(v, n);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.warp_lse[threadIdx.x >> 5] = v;
  __syncthreads();
  Lse r = s.warp_lse[0];
  for (int w = 1; w < kWarps; ++w) r = merge(r, s.warp_lse[w]);
  return r;
}

// Calls f(i, clean(row[i])) for this thread's elements; tile t covers [t * kTile, (t+1) * kTile)
// and thread j its kPer consecutive elements at t * kTile + j * kPer.
template <class F>
__device__ __forceinline__ void for_each(const float* row, int64_t V, F f) {
  for (int64_t b = static_cast<int64_t>(threadIdx.x) * kPer; b < V; b += kTile) {
#pragma unroll
    for (int e = 0; e < kPer; ++e)
      if (b + e < V) f(b + e, clean(row[b + e]));
  }
}

// Radix select: with W(S) the sum of weight over the included elements of S, finds the key v with
// W(key > v) < target <= W(key >= v), target = target_fn(W(all)) in [1, W(all)]. kw(i, x, &key)
// returns an element's weight (0 = excluded) and its key. Returns v; *above = W(key > v),
// *at = W(key == v), *target_out = target.
template <class KW, class TF>
__device__ uint32_t radix_select(const float* row, int64_t V, KW kw, TF target_fn, Shared& s,
                                 u64* above_out, u64* at_out, u64* target_out) {
  constexpr int kShift[3] = {21, 10, 0};
  constexpr int kBits[3] = {11, 11, 10};
  uint32_t prefix = 0, pmask = 0;
  u64 above = 0, target = 0, at = 0;
  for (int round = 0; round < 3; ++round) {
    const int shift = kShift[round], nb = 1 << kBits[round];
    const uint32_t dmask = static_cast<uint32_t>(nb - 1);
    for (int j = threadIdx.x; j < nb; j += kThreads) s.hist[j] = 0;
    __syncthreads();
    for_each(row, V, [&](int64_t i, float x) {
      uint32_t key = 0;
      const u64 w = kw(i, x, &key);
      if (w != 0 && (key & pmask) == prefix) atomicAdd(&s.hist[(key >> shift) & dmask], w);
    });
    __syncthreads();
    // Thread t owns bins top-down: nb-1-t*per ... so the scan runs from the largest keys.
    const int per = nb / kThreads;
    const int hi = nb - 1 - static_cast<int>(threadIdx.x) * per;
    u64 local = 0;
    for (int b = 0; b < per; ++b) local += s.hist[hi - b];
    u64 total = 0;
    const u64 excl = block_exclusive_sum(local, &total, s);
    if (round == 0) target = target_fn(total);
    if (above + excl < target && target <= above + excl + local) {
      u64 cum = above + excl;
      for (int b = 0; b < per; ++b) {
        const u64 h = s.hist[hi - b];
        if (cum + h >= target) {
          s.sel_bin = static_cast<uint32_t>(hi - b);
          s.sel_above = cum;
          s.sel_at = h;
          break;
        }
        cum += h;
      }
    }
    __syncthreads();
    above = s.sel_above;
    at = s.sel_at;
    prefix |= s.sel_bin << shift;
    pmask |= dmask << shift;
  }
  *above_out = above;
  *at_out = at;
  *target_out = target;
  return prefix;
}

// Index order search: the first index whose inclusive prefix sum of weight(i, x) exceeds
// target_fn(total) (a value in [0, total)); -1 when the total is 0.
template <class WF, class TF>
__device__ int64_t locate(const float* row, int64_t V, WF weight, TF target_fn, Shared& s) {
  const int ntiles = static_cast<int>((V + kTile - 1) / kTile);
  for (int j = threadIdx.x; j < ntiles; j += kThreads) s.tile_sum[j] = 0;
  __syncthreads();
  const int lane = threadIdx.x & 31;
  for (int64_t b = static_cast<int64_t>(threadIdx.x) * kPer, t = 0; t < ntiles; b += kTile, ++t) {
    u64 local = 0;
#pragma unroll
    for (int e = 0; e < kPer; ++e)
      if (b + e < V) local += weight(b + e, clean(row[b + e]));
    for (int o = 16; o > 0; o >>= 1) local += __shfl_down_sync(0xffffffffu, local, o);
    if (lane == 0 && local != 0) atomicAdd(&s.tile_sum[t], local);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    u64 total = 0;
    for (int j = 0; j < ntiles; ++j) total += s.tile_sum[j];
    s.loc_tile = -1;
    s.loc_idx = -1;
    if (total > 0) {
      u64 target = target_fn(total);
      if (target >= total) target = total - 1;
      u64 cum = 0;
      for (int j = 0; j < ntiles; ++j) {
        if (cum + s.tile_sum[j] > target) {
          s.loc_tile = j;
          s.loc_off = target - cum;
          break;
        }
        cum += s.tile_sum[j];
      }
    }
  }
  __syncthreads();
  const int64_t tile = s.loc_tile;
  if (tile < 0) return -1;
  const u64 off = s.loc_off;
  const int64_t b = tile * kTile + static_cast<int64_t>(threadIdx.x) * kPer;
  u64 w[kPer];
  u64 local = 0;
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    w[e] = b + e < V ? weight(b + e, clean(row[b + e])) : 0;
    local += w[e];
  }
  u64 total = 0;
  const u64 excl = block_exclusive_sum(local, &total, s);
  if (excl <= off && off < excl + local) {
    u64 cum = excl;
    for (int e = 0; e < kPer; ++e) {
      if (w[e] != 0 && off < cum + w[e]) {
        s.loc_idx = b + e;
        break;
      }
      cum += w[e];
    }
  }
  __syncthreads();
  return s.loc_idx;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleParams p) {
  __shared__ Shared s;
  const int64_t r = blockIdx.x, V = p.vocab;
  float* row = p.logits + r * V;
  const SamplingRowParams rp = p.params[r];
  const int tid = threadIdx.x;

  // A. Raw log-softmax statistics.
  Lse raw{-INFINITY, 0.0};
  if (p.out_logprob != nullptr) {
    Lse t{-INFINITY, 0.0};
    for_each(row, V, [&](int64_t, float x) {
      if (x == -INFINITY) return;
      if (x > t.m) {
        t.s = t.s * exp(static_cast<double>(t.m - x)) + 1.0;
        t.m = x;
      } else {
        t.s += static_cast<double>(expf(x - t.m));
      }
    });
    raw = block_lse(t, s);
  }
  __syncthreads();

  // B. Penalties (repetition, then frequency/presence on generated tokens), then bans; the
  // float operations are the CPU sampler's, unfused, so the processed logits match bit for bit.
  int32_t pen_begin = 0, pen_end = 0;
  if (p.penalty_offsets != nullptr) {
    pen_begin = p.penalty_offsets[r];
    pen_end = p.penalty_offsets[r + 1];
    for (int32_t j = pen_begin + tid; j < pen_end; j += kThreads) {
      const int32_t t = p.penalty_tokens[j];
      if (t < 0 || t >= V) continue;
      float x = row[t];
      if (p.penalty_scratch != nullptr) p.penalty_scratch[j] = x;
      if (rp.repetition != 1.0f)
        x = x > 0.0f ? __fdiv_rn(x, rp.repetition) : __fmul_rn(x, rp.repetition);
      const int32_t c = p.penalty_counts[j];
      if (c > 0 && (rp.frequency != 0.0f || rp.presence != 0.0f))
        x = __fsub_rn(x, __fadd_rn(__fmul_rn(rp.frequency, static_cast<float>(c)), rp.presence));
      row[t] = x;
    }
  }
  __syncthreads();
  if (p.banned_offsets != nullptr) {
    for (int32_t j = p.banned_offsets[r] + tid; j < p.banned_offsets[r + 1]; j += kThreads) {
      const int32_t t = p.banned_tokens[j];
      if (t >= 0 && t < V) row[t] = -INFINITY;
    }
  }
  __syncthreads();

  // C. Max, first argmax, finite count.
  MaxIdx mi{-INFINITY, INT64_MAX};
  int32_t finite = 0;
  for_each(row, V, [&](int64_t i, float x) {
    if (x == -INFINITY) return;
    ++finite;
    mi = better(mi, MaxIdx{x, i});
  });
  mi = block_max(mi, s);
  finite = block_sum_i32(finite, s);
  if (finite == 0) {
    if (tid == 0) {
      p.out_ids[r] = -1;
      if (p.out_logprob != nullptr) p.out_logprob[r] = -INFINITY;
    }
    return;
  }

  int64_t token = mi.i;
  if (rp.temperature >= kSampleGreedyTemperature) {
    const float m = mi.v, inv_t = 1.0f / rp.temperature;
    auto weight_of = [=](float x) { return expf((x - m) * inv_t); };

    // D. top_k over the logits.
    const bool use_k = rp.top_k > 0 && rp.top_k < finite;
    uint32_t vk = 0;
    int64_t cut_k = V;
    if (use_k) {
      u64 above = 0, at = 0, target = 0;
      vk = radix_select(
          row, V,
          [](int64_t, float x, uint32_t* key) -> u64 {
            *key = ordered(x);
            return x != -INFINITY ? 1 : 0;
          },
          [&](u64) -> u64 { return static_cast<u64>(rp.top_k); }, s, &above, &at, &target);
      const u64 need = target - above;
      if (need < at) {
        const int64_t i = locate(
            row, V,
            [=](int64_t, float x) -> u64 { return x != -INFINITY && ordered(x) == vk ? 1 : 0; },
            [=](u64) -> u64 { return need - 1; }, s);
        cut_k = i + 1;
      }
    }
    auto in_k = [=](int64_t i, float x) {
      if (x == -INFINITY) return false;
      if (!use_k) return true;
      const uint32_t k = ordered(x);
      return k > vk || (k == vk && i < cut_k);
    };

    // E. top_p over the weights of the top_k set.
    const bool use_p = rp.top_p < 1.0f;
    uint32_t vp = 0;
    int64_t cut_p = V;
    if (use_p) {
      u64 above = 0, at = 0, target = 0;
      const double top_p = rp.top_p;
      vp = radix_select(
          row, V,
          [=](int64_t i, float x, uint32_t* key) -> u64 {
            if (!in_k(i, x)) return 0;
            const float w = weight_of(x);
            *key = __float_as_uint(w);
            return to_fixed(w);
          },
          [=](u64 total) -> u64 {
            u64 t = static_cast<u64>(ceil(top_p * static_cast<double>(total)));
            return t < 1 ? 1 : (t > total ? total : t);
          },
          s, &above, &at, &target);
      const u64 wv = to_fixed(__uint_as_float(vp));
      const u64 need = (target - above + wv - 1) / wv;
      if (need < at / wv) {
        const int64_t i = locate(
            row, V,
            [=](int64_t j, float x) -> u64 {
              return in_k(j, x) && __float_as_uint(weight_of(x)) == vp ? 1 : 0;
            },
            [=](u64) -> u64 { return need - 1; }, s);
        cut_p = i + 1;
      }
    }

    // F + G. min_p, then one draw in index order.
    const float min_p = rp.min_p;
    const double u = uniform_of(rp.seed, rp.step);
    const int64_t i = locate(
        row, V,
        [=](int64_t j, float x) -> u64 {
          if (!in_k(j, x)) return 0;
          const float w = weight_of(x);
          if (w < min_p) return 0;
          if (use_p) {
            const uint32_t key = __float_as_uint(w);
            if (key < vp || (key == vp && j >= cut_p)) return 0;
          }
          return to_fixed(w);
        },
        [=](u64 total) -> u64 { return static_cast<u64>(u * static_cast<double>(total)); }, s);
    if (i >= 0) token = i;  // always found: the first argmax weighs 2^44 and is kept
  }

  // The chosen token's raw logprob: its value before penalties comes from the scratch copy.
  if (p.out_logprob != nullptr) {
    if (tid == 0) s.raw_tok = clean(row[token]);
    __syncthreads();
    if (p.penalty_scratch != nullptr) {
      for (int32_t j = pen_begin + tid; j < pen_end; j += kThreads)
        if (p.penalty_tokens[j] == token) s.raw_tok = clean(p.penalty_scratch[j]);
    }
    __syncthreads();
    if (tid == 0)
      p.out_logprob[r] = static_cast<float>(static_cast<double>(s.raw_tok - raw.m) - log(raw.s));
  }
  if (tid == 0) p.out_ids[r] = static_cast<int32_t>(token);
}

}  // namespace

double sample_uniform(uint64_t seed, uint64_t step) {
  return uniform_of(seed, step);
}

void launch_sample(const SampleParams& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(p.rows >= 0 && p.rows < (int64_t{1} << 31),
                  "sample: rows " + std::to_string(p.rows) + " out of range");
  if (p.rows == 0) return;
  WS_CUDA_REQUIRE(p.vocab > 0 && p.vocab <= kSampleMaxVocab,
                  "sample: vocab " + std::to_string(p.vocab) + " outside [1, " +
                      std::to_string(kSampleMaxVocab) + "]");
  WS_CUDA_REQUIRE(p.logits != nullptr && p.params != nullptr && p.out_ids != nullptr,
                  "sample: logits, params and out_ids are required");
  WS_CUDA_REQUIRE(!p.penalty_offsets || (p.penalty_tokens && p.penalty_counts),
                  "sample: penalty_offsets without penalty_tokens/penalty_counts");
  WS_CUDA_REQUIRE(!p.banned_offsets || p.banned_tokens, "sample: banned_offsets without tokens");
  WS_CUDA_REQUIRE(!(p.out_logprob && p.penalty_offsets) || p.penalty_scratch,
                  "sample: out_logprob with penalties needs penalty_scratch");
  sample_kernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
