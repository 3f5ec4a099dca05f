#include "backend/cpu/gemm.h"

#include <cblas.h>

#include "common/check.h"

extern "C" void openblas_set_num_threads(int);

namespace wideserve::cpu {

void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  WS_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm: negative shape {}x{}x{}", m, n, k);
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
            bool accumulate) {
  gemm(true, m, n, k, 1.0f, x, k, w, k, accumulate ? 1.0f : 0.0f, y, n);
}

void set_blas_threads(int n) {
  if (n > 0) openblas_set_num_threads(n);
}

}  // namespace wideserve::cpu
