#include "backend/cpu/ops.h"

#include <algorithm>
#include <cmath>

#include "common/thread_pool.h"

namespace wideserve::cpu {

void rms_norm(const float* x, const float* w, float eps, float* out, int64_t rows, int64_t dim,
              int64_t x_stride, int64_t out_stride) {
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, dim)),
               [&](size_t b, size_t e) {
                 for (size_t r = b; r < e; ++r) {
                   const float* xr = x + r * x_stride;
                   float* o = out + r * out_stride;
                   float ss = 0.f;
                   for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
                   const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
                   for (int64_t i = 0; i < dim; ++i) o[i] = w[i] * (xr[i] * inv);
                 }
               });
}

void silu_mul(const float* gu, float* out, int64_t rows, int64_t inter) {
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, inter)),
               [&](size_t b, size_t e) {
                 for (size_t r = b; r < e; ++r) {
                   const float* g = gu + r * 2 * inter;
                   const float* u = g + inter;
                   float* o = out + r * inter;
                   for (int64_t i = 0; i < inter; ++i)
                     o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
                 }
               });
}

void softmax_rows(float* x, int64_t rows, int64_t len, int64_t stride) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * stride;
    float mx = -INFINITY;
    for (int64_t i = 0; i < len; ++i) mx = std::max(mx, xr[i]);
    float sum = 0.f;
    for (int64_t i = 0; i < len; ++i) {
      xr[i] = std::exp(xr[i] - mx);
      sum += xr[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < len; ++i) xr[i] *= inv;
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  parallel_for(n, 1 << 14, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += x[i];
  });
}

}  // namespace wideserve::cpu
