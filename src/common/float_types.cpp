#include "common/float_types.h"

#include <array>

namespace wideserve {
namespace {
// All 126 finite non-negative e4m3 values in increasing order, by code.
struct Fp8Table {
  std::array<float, 127> val{};
  Fp8Table() {
    for (int c = 0; c < 127; ++c) val[c] = fp8_e4m3_to_float(static_cast<uint8_t>(c));
  }
};
const Fp8Table& table() {
  static const Fp8Table t;
  return t;
}
}  // namespace

uint8_t float_to_fp8_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fabs(f);
  const auto& v = table().val;
  if (a >= 448.0f) return sign | 0x7e;
  // Binary search for the nearest code; ties go to the even code (even mantissa).
  int lo = 0, hi = 126;
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (v[mid] <= a)
      lo = mid;
    else
      hi = mid;
  }
  float dlo = a - v[lo], dhi = v[hi] - a;
  int code;
  if (dlo < dhi)
    code = lo;
  else if (dhi < dlo)
    code = hi;
  else
    code = (lo % 2 == 0) ? lo : hi;
  return sign | static_cast<uint8_t>(code);
}

}  // namespace wideserve
