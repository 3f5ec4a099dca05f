// CPU references (float64) for the GEMM layer's GPU tests. Plain C++; fp8 values travel as their
// raw e4m3 bytes and bf16 values as floats.
#pragma once

#include <cstdint>
#include <vector>

namespace wideserve::cuda {

// e4m3 byte -> its exact value.
double e4m3_to_double(uint8_t v);

// launch_quantize_fp8 on the host: per row and 128 columns, scale = max(amax, 1e-10f) / 448 in
// fp32 and q = e4m3_satfinite(x / scale). x: [m, k] row-major bf16 values as floats.
struct QuantizedRef {
  std::vector<uint8_t> q;    // [m, k]
  std::vector<float> scale;  // [ceil(k/128)][m]
};
QuantizedRef quantize_fp8_ref(const std::vector<float>& x, int64_t m, int64_t k);

// out[i][j] = sum_k x[i][k] * w[j][k] + beta * y0[i][j] (y0 may be empty when beta == 0).
// x: [mi, k], w: [nj, k], y0/out: [mi, nj], all row-major float64.
std::vector<double> gemm_nt_ref(const std::vector<double>& x, const std::vector<double>& w,
                                int64_t mi, int64_t nj, int64_t k, double beta,
                                const std::vector<double>& y0);

// Dequantized rows of an activation quantized in 1x128 groups: q_rows [rows.size(), k] holds
// rows[i] of the full [m, k] matrix; scale is the full [ceil(k/128)][m] tensor.
std::vector<double> dequant_act_rows_ref(const std::vector<uint8_t>& q_rows,
                                         const std::vector<int64_t>& rows,
                                         const std::vector<float>& scale, int64_t m, int64_t k);

// Dequantized rows of a 128x128 block-scaled weight: q_rows [rows.size(), k] holds rows[i] of the
// full [n, k] weight; scale is the full [ceil(n/128)][scale_ld] tensor (0 = ceil(k/128)).
std::vector<double> dequant_weight_rows_ref(const std::vector<uint8_t>& q_rows,
                                            const std::vector<int64_t>& rows,
                                            const std::vector<float>& scale, int64_t k,
                                            int64_t scale_ld = 0);

}  // namespace wideserve::cuda
