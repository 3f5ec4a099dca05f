#include <gtest/gtest.h>

#include <cmath>

#include "common/float_types.h"

namespace wideserve {
namespace {

TEST(FloatTypes, Fp8E4m3KnownValues) {
  EXPECT_EQ(fp8_e4m3_to_float(0x00), 0.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x7e), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0xfe), -448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_float(0x7f)));
}

TEST(FloatTypes, Fp8RoundTripOfEveryCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;  // NaN
    float f = fp8_e4m3_to_float(static_cast<uint8_t>(c));
    uint8_t back = float_to_fp8_e4m3(f);
    if (f == 0.0f)
      EXPECT_EQ(fp8_e4m3_to_float(back), 0.0f);
    else
      EXPECT_EQ(back, c) << c;
  }
  EXPECT_EQ(float_to_fp8_e4m3(1000.0f), 0x7e);                      // saturates
  EXPECT_EQ(fp8_e4m3_to_float(float_to_fp8_e4m3(1.0625f)), 1.0f);   // tie to even mantissa
  EXPECT_EQ(fp8_e4m3_to_float(float_to_fp8_e4m3(1.1875f)), 1.25f);  // tie to even mantissa
}

TEST(FloatTypes, Bf16AndF16) {
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(3.14159f)), 3.140625f);
  EXPECT_EQ(f16_to_float(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_float(0xc000), -2.0f);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(f16_to_float(0x7c00)));
}

}  // namespace
}  // namespace wideserve
