// Float32 GEMM entry points for the CPU backend, backed by OpenBLAS (multi-threaded inside).
#pragma once

#include <cstdint>

namespace wideserve::cpu {

// y[m, n] = x[m, k] * w[n, k]^T (+ y if accumulate). Row-major; the nn.Linear convention.
void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
            bool accumulate = false);

// c[m, n] = alpha * a[m, k] * op(b) + beta * c, general strides (lda/ldb/ldc), b transposed or not.
void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace wideserve::cpu
