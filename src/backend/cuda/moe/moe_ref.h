// CPU references for the MoE kernels (plain C++, float64 accumulation). The routing reference is
// src/moe/router.cpp itself.
#pragma once

#include <cstdint>
#include <vector>

namespace wideserve::cuda::ref {

// The expected outputs of launch_moe_align (stable counting sort by local expert).
struct AlignResult {
  std::vector<int32_t> counts;          // [E]
  std::vector<int32_t> offsets;         // [E+1]
  std::vector<int32_t> sorted_to_slot;  // [T*k], -1 past offsets[E]
  std::vector<int32_t> slot_to_sorted;  // [T*k], -1 for remote experts
};
AlignResult moe_align(const std::vector<int32_t>& topk_ids, int64_t num_experts,
                      int64_t expert_begin);

// out[r, i] = silu(x[r, i]) * x[r, I + i] for x [rows, 2I].
std::vector<double> silu_and_mul(const std::vector<float>& x, int64_t rows, int64_t inter);

// out[t] = sum_j w[t,j] * y[slot_to_sorted[t*k+j]] (+ shared[t]); y [*, H].
std::vector<double> moe_combine(const std::vector<float>& y,
                                const std::vector<int32_t>& slot_to_sorted,
                                const std::vector<float>& weights, const std::vector<float>* shared,
                                int64_t tokens, int64_t top_k, int64_t hidden);

// d[rows of e] = a[rows of e] * b[e]^T; a [R, K], b [E, N, K], offsets [E+1] -> d [offsets[E], N].
std::vector<double> grouped_gemm(const std::vector<float>& a, const std::vector<float>& b,
                                 const std::vector<int32_t>& offsets, int64_t n, int64_t k);

// FP8 1x128 quantization rule shared by the kernels: scale = max(amax, 1e-10) / 448.
float fp8_group_scale(const float* x);

}  // namespace wideserve::cuda::ref
