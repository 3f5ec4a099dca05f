#include "backend/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "common/check.h"
#include "common/thread_pool.h"

extern "C" void openblas_set_num_threads(int);

namespace wideserve::cpu {
namespace {
// BLAS runs single-threaded inside our pool's tasks: one level of parallelism, no oversubscription,
// and concurrent calls from pool threads do not serialize on BLAS's own server.
void init_blas_once() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// Below this many rows, GEMM's packing of B costs more than the product: use one GEMV per row
// (decode steps are m = 1 per sequence and stream the weights exactly once).
constexpr int64_t kGemvMaxRows = 4;

void sgemm1(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= kGemvMaxRows) {
    // c[i, :] = alpha * op(b) applied to a[i, :]: op(b) is [n, k] (trans_b) or b^T of [k, n].
    // beta == 0 must not read c (BLAS may compute 0 * NaN on stale memory).
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    for (int64_t i = 0; i < m; ++i)
      cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans,
                  static_cast<blasint>(trans_b ? n : k), static_cast<blasint>(trans_b ? k : n),
                  alpha, b, static_cast<blasint>(ldb), a + i * lda, 1, beta, c + i * ldc, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}
// Below this many multiply-adds a GEMM is not worth splitting across threads.
constexpr int64_t kMinWorkPerTask = 1 << 18;
}  // namespace

void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  WS_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm: negative shape {}x{}x{}", m, n, k);
  if (m == 0 || n == 0) return;
  init_blas_once();
  const int64_t work = m * n * std::max<int64_t>(k, 1);
  const int64_t threads = global_thread_pool().num_threads();
  if (work < 2 * kMinWorkPerTask || threads == 1) {
    sgemm1(trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Split the larger output dimension; slices stay multiples of 16 for the BLAS kernels.
  if (n >= m) {
    int64_t chunk =
        std::max<int64_t>(16, (kMinWorkPerTask / std::max<int64_t>(1, m * k) + 15) / 16 * 16);
    int64_t tasks = (n + chunk - 1) / chunk;
    parallel_for(tasks, 1, [&](size_t tb, size_t te) {
      for (size_t t = tb; t < te; ++t) {
        int64_t n0 = t * chunk, n1 = std::min(n, n0 + chunk);
        const float* bs = trans_b ? b + n0 * ldb : b + n0;
        sgemm1(trans_b, m, n1 - n0, k, alpha, a, lda, bs, ldb, beta, c + n0, ldc);
      }
    });
  } else {
    int64_t chunk = std::max<int64_t>(4, kMinWorkPerTask / std::max<int64_t>(1, n * k));
    int64_t tasks = (m + chunk - 1) / chunk;
    parallel_for(tasks, 1, [&](size_t tb, size_t te) {
      for (size_t t = tb; t < te; ++t) {
        int64_t m0 = t * chunk, m1 = std::min(m, m0 + chunk);
        sgemm1(trans_b, m1 - m0, n, k, alpha, a + m0 * lda, lda, b, ldb, beta, c + m0 * ldc, ldc);
      }
    });
  }
}

void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
            bool accumulate) {
  gemm(true, m, n, k, 1.0f, x, k, w, k, accumulate ? 1.0f : 0.0f, y, n);
}

}  // namespace wideserve::cpu
