#include "backend/cuda/gemm/gemm_ref.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>

namespace wideserve::cuda {

double e4m3_to_double(uint8_t v) {
  __nv_fp8_e4m3 f;
  f.__x = v;
  return static_cast<double>(static_cast<float>(f));
}

QuantizedRef quantize_fp8_ref(const std::vector<float>& x, int64_t m, int64_t k) {
  const int64_t nkb = (k + 127) / 128;
  QuantizedRef r;
  r.q.resize(static_cast<size_t>(m * k));
  r.scale.resize(static_cast<size_t>(nkb * m));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t b = 0; b < nkb; ++b) {
      const int64_t c0 = b * 128, c1 = std::min(k, c0 + 128);
      float amax = 0.f;
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[i * k + c]));
      const float scale = std::max(amax, 1e-10f) / 448.f;
      r.scale[b * m + i] = scale;
      for (int64_t c = c0; c < c1; ++c)
        r.q[i * k + c] = __nv_cvt_float_to_fp8(x[i * k + c] / scale, __NV_SATFINITE, __NV_E4M3);
    }
  }
  return r;
}

std::vector<double> gemm_nt_ref(const std::vector<double>& x, const std::vector<double>& w,
                                int64_t mi, int64_t nj, int64_t k, double beta,
                                const std::vector<double>& y0) {
  std::vector<double> out(static_cast<size_t>(mi * nj));
  for (int64_t i = 0; i < mi; ++i) {
    const double* xr = x.data() + i * k;
    for (int64_t j = 0; j < nj; ++j) {
      const double* wr = w.data() + j * k;
      double acc = 0;
      for (int64_t c = 0; c < k; ++c) acc += xr[c] * wr[c];
      if (beta != 0.0) acc += beta * y0[i * nj + j];
      out[i * nj + j] = acc;
    }
  }
  return out;
}

std::vector<double> dequant_act_rows_ref(const std::vector<uint8_t>& q_rows,
                                         const std::vector<int64_t>& rows,
                                         const std::vector<float>& scale, int64_t m, int64_t k) {
  std::vector<double> out(q_rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t c = 0; c < k; ++c)
      out[i * k + c] =
          e4m3_to_double(q_rows[i * k + c]) * static_cast<double>(scale[(c / 128) * m + rows[i]]);
  return out;
}

std::vector<double> dequant_weight_rows_ref(const std::vector<uint8_t>& q_rows,
                                            const std::vector<int64_t>& rows,
                                            const std::vector<float>& scale, int64_t k,
                                            int64_t scale_ld) {
  const int64_t nkb = scale_ld != 0 ? scale_ld : (k + 127) / 128;
  std::vector<double> out(q_rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t c = 0; c < k; ++c)
      out[i * k + c] = e4m3_to_double(q_rows[i * k + c]) *
                       static_cast<double>(scale[(rows[i] / 128) * nkb + c / 128]);
  return out;
}

}  // namespace wideserve::cuda
