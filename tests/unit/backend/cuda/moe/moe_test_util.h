// Helpers of the MoE GPU tests: host fp8 conversions (bf16 ones: gpu_test_util.h), poisoned device
// buffers, host FP8 quantization with the kernels' rule, random expert ids and an align runner.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <ostream>
#include <random>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gpu_test_util.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_ref.h"

namespace wideserve::cuda {
// gtest prints MoePath parameters by name (found by argument-dependent lookup).
inline void PrintTo(MoePath p, std::ostream* os) {
  *os << (p == MoePath::kSmall   ? "small"
          : p == MoePath::kLarge ? "large"
          : p == MoePath::kRank  ? "rank"
                                 : "auto");
}
}  // namespace wideserve::cuda

namespace wideserve::test {

inline float fp8_to_float(__nv_fp8_e4m3 q) {
  return static_cast<float>(q);
}

// Device buffer filled with 0xFF bytes (NaN for bf16/f32, -1 for int32) or another byte.
template <typename T>
cuda::DeviceBuffer<T> poisoned(size_t n, int byte = 0xFF) {
  cuda::DeviceBuffer<T> b(n);
  if (n > 0) WS_CUDA_CHECK(cudaMemset(b.get(), byte, b.bytes()));
  return b;
}

template <typename T>
cuda::DeviceBuffer<T> upload(const std::vector<T>& v) {
  cuda::DeviceBuffer<T> b(v.size());
  b.upload(v);
  return b;
}

// Per-row 1x128 quantization of x [rows, cols] (cols % 128 == 0): q, scales [rows][cols/128].
struct Fp8Rows {
  std::vector<__nv_fp8_e4m3> q;
  std::vector<float> scale;
  std::vector<float> dequant;  // q * scale
};
inline Fp8Rows quantize_rows(const std::vector<float>& x, int64_t rows, int64_t cols) {
  Fp8Rows r;
  r.q.resize(rows * cols);
  r.scale.resize(rows * (cols / 128));
  r.dequant.resize(rows * cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t g = 0; g < cols / 128; ++g) {
      const float* src = &x[i * cols + g * 128];
      const float s = cuda::ref::fp8_group_scale(src);
      r.scale[i * (cols / 128) + g] = s;
      for (int c = 0; c < 128; ++c) {
        const int64_t at = i * cols + g * 128 + c;
        r.q[at] = __nv_fp8_e4m3(src[c] / s);
        r.dequant[at] = fp8_to_float(r.q[at]) * s;
      }
    }
  return r;
}

// 128x128 block quantization of w [experts, n, k] (n, k % 128 == 0): scales [E][n/128][k/128].
inline Fp8Rows quantize_blocks(const std::vector<float>& w, int64_t experts, int64_t n, int64_t k) {
  Fp8Rows r;
  r.q.resize(w.size());
  r.dequant.resize(w.size());
  const int64_t nb = n / 128, kb = k / 128;
  r.scale.resize(experts * nb * kb);
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t bn = 0; bn < nb; ++bn)
      for (int64_t bk = 0; bk < kb; ++bk) {
        float amax = 0.f;
        for (int64_t i = 0; i < 128; ++i)
          for (int64_t j = 0; j < 128; ++j)
            amax = std::max(amax, std::fabs(w[(e * n + bn * 128 + i) * k + bk * 128 + j]));
        const float s = std::max(amax, 1e-10f) / 448.0f;
        r.scale[(e * nb + bn) * kb + bk] = s;
        for (int64_t i = 0; i < 128; ++i)
          for (int64_t j = 0; j < 128; ++j) {
            const int64_t at = (e * n + bn * 128 + i) * k + bk * 128 + j;
            r.q[at] = __nv_fp8_e4m3(w[at] / s);
            r.dequant[at] = fp8_to_float(r.q[at]) * s;
          }
      }
  return r;
}

// k distinct experts per token from [0, total): uniform, or skewed towards expert 0..3.
inline std::vector<int32_t> random_ids(int64_t T, int64_t k, int64_t total, uint64_t seed,
                                       bool skew) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> ids(T * k), pool(total);
  std::iota(pool.begin(), pool.end(), 0);
  for (int64_t t = 0; t < T; ++t) {
    if (skew) {  // experts 0..k-1 for most tokens: long runs of one expert
      for (int64_t j = 0; j < k; ++j)
        ids[t * k + j] = static_cast<int32_t>((j + (g() % 4 == 0)) % total);
      std::shuffle(ids.begin() + t * k, ids.begin() + (t + 1) * k, g);
      continue;
    }
    for (int64_t j = 0; j < k; ++j) std::swap(pool[j], pool[j + g() % (total - j)]);
    std::copy(pool.begin(), pool.begin() + k, ids.begin() + t * k);
  }
  return ids;
}

struct AlignOut {
  cuda::DeviceBuffer<int32_t> counts, offsets, sorted_to_slot, slot_to_sorted;
};

// launch_moe_align_path on poisoned (0x7F) outputs; synchronises.
inline AlignOut run_align(const std::vector<int32_t>& ids, int64_t T, int64_t k, int64_t E,
                          int64_t begin, cuda::MoePath path = cuda::MoePath::kAuto) {
  auto d_ids = upload(ids);
  AlignOut o{poisoned<int32_t>(E, 0x7F), poisoned<int32_t>(E + 1, 0x7F),
             poisoned<int32_t>(T * k, 0x7F), poisoned<int32_t>(T * k, 0x7F)};
  cuda::DeviceBuffer<char> ws(cuda::moe_align_workspace_bytes(T, k, E));
  cuda::MoeAlignParams p;
  p.topk_ids = d_ids.get();
  p.num_tokens = T;
  p.top_k = k;
  p.num_experts = E;
  p.expert_begin = begin;
  p.expert_counts = o.counts.get();
  p.expert_offsets = o.offsets.get();
  p.sorted_to_slot = o.sorted_to_slot.get();
  p.slot_to_sorted = o.slot_to_sorted.get();
  p.workspace = ws.get();
  cuda::launch_moe_align_path(p, path, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  return o;
}

}  // namespace wideserve::test
