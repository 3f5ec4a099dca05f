// Elementwise and row-wise float32 kernels of the CPU backend (multi-threaded over rows).
#pragma once

#include <cstdint>

namespace wideserve::cpu {

// out[r] = x[r] / rms(x[r]) * w, rows of `dim`; out may alias x.
void rms_norm(const float* x, const float* w, float eps, float* out, int64_t rows, int64_t dim,
              int64_t x_stride, int64_t out_stride);

// out[r, i] = silu(gu[r, i]) * gu[r, inter + i]: gate and up halves of a fused projection.
void silu_mul(const float* gu, float* out, int64_t rows, int64_t inter);

// In-place numerically stable softmax of each row over its first `len` entries; entries past
// `len` (up to `stride`) are left alone.
void softmax_rows(float* x, int64_t rows, int64_t len, int64_t stride);

// y += x, n elements.
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace wideserve::cpu
