// Helpers for the GEMM GPU tests: sampled row/column checking against the float64 references
// (model-sized outputs are too large for a full CPU product), row downloads and error metrics.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "backend/cuda/common/cuda_check.h"

namespace wideserve::test {

// All of [0, n) when n <= max_count, else the edges (0, 127, 128, n-1) plus random indices.
inline std::vector<int64_t> sample_indices(int64_t n, int64_t max_count, uint64_t seed) {
  std::vector<int64_t> out;
  if (n <= max_count) {
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  std::set<int64_t> s{0, n - 1, n / 2};
  if (n > 128) s.insert({127, 128});
  std::mt19937_64 g(seed);
  std::uniform_int_distribution<int64_t> d(0, n - 1);
  while (static_cast<int64_t>(s.size()) < max_count) s.insert(d(g));
  return {s.begin(), s.end()};
}

// rows[i] of a device matrix with row stride ld (elements), cols elements each.
template <typename T>
std::vector<T> download_rows(const T* dev, int64_t ld, const std::vector<int64_t>& rows,
                             int64_t cols) {
  std::vector<T> out(rows.size() * static_cast<size_t>(cols));
  for (size_t i = 0; i < rows.size(); ++i)
    WS_CUDA_CHECK(cudaMemcpy(out.data() + i * cols, dev + rows[i] * ld, cols * sizeof(T),
                             cudaMemcpyDeviceToHost));
  return out;
}

inline double to_double(__nv_bfloat16 v) {
  return static_cast<double>(__bfloat162float(v));
}
inline double to_double(float v) {
  return static_cast<double>(v);
}

// Picks cols out of row-major [rows, n] values.
template <typename T>
std::vector<double> pick_cols(const std::vector<T>& rows_full, int64_t n,
                              const std::vector<int64_t>& cols) {
  const size_t nrows = rows_full.size() / static_cast<size_t>(n);
  std::vector<double> out;
  out.reserve(nrows * cols.size());
  for (size_t i = 0; i < nrows; ++i)
    for (int64_t c : cols) out.push_back(to_double(rows_full[i * n + c]));
  return out;
}

struct ErrorStats {
  double rel_l2 = 0;   // ||out - ref|| / ||ref||
  double max_rel = 0;  // max |out - ref| / rms(ref)
  bool finite = true;
};

inline ErrorStats compare(const std::vector<double>& out, const std::vector<double>& ref) {
  ErrorStats s;
  double num = 0, den = 0, mx = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) s.finite = false;
    const double d = out[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    mx = std::max(mx, std::fabs(d));
  }
  const double rms = std::sqrt(den / std::max<size_t>(1, ref.size()));
  s.rel_l2 = s.finite ? std::sqrt(num / (den > 0 ? den : 1.0)) : INFINITY;
  s.max_rel = s.finite ? mx / (rms > 0 ? rms : 1.0) : INFINITY;
  return s;
}

}  // namespace wideserve::test
