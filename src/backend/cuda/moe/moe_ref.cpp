#include "backend/cuda/moe/moe_ref.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "common/thread_pool.h"

namespace wideserve::cuda::ref {

AlignResult moe_align(const std::vector<int32_t>& topk_ids, int64_t num_experts,
                      int64_t expert_begin) {
  const int64_t slots = static_cast<int64_t>(topk_ids.size());
  AlignResult r;
  r.counts.assign(num_experts, 0);
  r.offsets.assign(num_experts + 1, 0);
  r.sorted_to_slot.assign(slots, -1);
  r.slot_to_sorted.assign(slots, -1);
  auto local = [&](int64_t s) {
    const int64_t e = topk_ids[s] - expert_begin;
    return (e >= 0 && e < num_experts) ? e : int64_t(-1);
  };
  for (int64_t s = 0; s < slots; ++s)
    if (local(s) >= 0) ++r.counts[local(s)];
  for (int64_t e = 0; e < num_experts; ++e) r.offsets[e + 1] = r.offsets[e] + r.counts[e];
  std::vector<int32_t> fill(r.offsets.begin(), r.offsets.end() - 1);
  for (int64_t s = 0; s < slots; ++s) {
    const int64_t e = local(s);
    if (e < 0) continue;
    const int32_t row = fill[e]++;
    r.sorted_to_slot[row] = static_cast<int32_t>(s);
    r.slot_to_sorted[s] = row;
  }
  return r;
}

std::vector<double> silu_and_mul(const std::vector<float>& x, int64_t rows, int64_t inter) {
  WS_CHECK(static_cast<int64_t>(x.size()) >= rows * 2 * inter, "silu_and_mul ref: short input");
  std::vector<double> out(rows * inter);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < inter; ++i) {
      const double g = x[r * 2 * inter + i], u = x[r * 2 * inter + inter + i];
      out[r * inter + i] = g / (1.0 + std::exp(-g)) * u;
    }
  return out;
}

std::vector<double> moe_combine(const std::vector<float>& y,
                                const std::vector<int32_t>& slot_to_sorted,
                                const std::vector<float>& weights, const std::vector<float>* shared,
                                int64_t tokens, int64_t top_k, int64_t hidden) {
  std::vector<double> out(tokens * hidden, 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    double* o = &out[t * hidden];
    for (int64_t j = 0; j < top_k; ++j) {
      const int32_t row = slot_to_sorted[t * top_k + j];
      if (row < 0) continue;
      const double w = weights[t * top_k + j];
      for (int64_t i = 0; i < hidden; ++i) o[i] += w * y[row * hidden + i];
    }
    if (shared)
      for (int64_t i = 0; i < hidden; ++i) o[i] += (*shared)[t * hidden + i];
  }
  return out;
}

std::vector<double> grouped_gemm(const std::vector<float>& a, const std::vector<float>& b,
                                 const std::vector<int32_t>& offsets, int64_t n, int64_t k) {
  const int64_t experts = static_cast<int64_t>(offsets.size()) - 1;
  const int64_t rows = offsets[experts];
  std::vector<double> d(rows * n);
  std::vector<int32_t> row_expert(rows);
  for (int64_t e = 0; e < experts; ++e)
    for (int32_t r = offsets[e]; r < offsets[e + 1]; ++r) row_expert[r] = static_cast<int32_t>(e);
  parallel_for(rows, 4, [&](size_t rb, size_t re) {
    for (size_t r = rb; r < re; ++r) {
      const float* x = &a[r * k];
      const float* w = &b[row_expert[r] * n * k];
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t i = 0; i < k; ++i) acc += double(x[i]) * w[j * k + i];
        d[r * n + j] = acc;
      }
    }
  });
  return d;
}

float fp8_group_scale(const float* x) {
  float amax = 0.f;
  for (int i = 0; i < 128; ++i) amax = std::max(amax, std::fabs(x[i]));
  return std::max(amax, 1e-10f) / 448.0f;
}

}  // namespace wideserve::cuda::ref
