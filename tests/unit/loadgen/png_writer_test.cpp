#include "loadgen/png_writer.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/check.h"
#include "loadgen/canvas.h"
#include "loadgen/plot.h"

namespace wideserve::loadgen {
namespace {

uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

struct Decoded {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// An independent reader for what the encoder promises: chunk CRCs, IHDR, IDAT -> filter-0 rows.
Decoded decode(const std::string& png) {
  Decoded d;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  std::vector<std::string> types;
  for (size_t at = 8; at < png.size();) {
    uint32_t len = be32(png, at);
    std::string type = png.substr(at + 4, 4);
    types.push_back(type);
    std::string data = png.substr(at + 8, len);
    uLong crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    EXPECT_EQ(be32(png, at + 8 + len), crc) << type;
    if (type == "IHDR") {
      EXPECT_EQ(len, 13u);
      d.width = static_cast<int>(be32(data, 0));
      d.height = static_cast<int>(be32(data, 4));
      EXPECT_EQ(data.substr(8), std::string("\x08\x02\x00\x00\x00", 5));
    } else if (type == "IDAT") {
      idat += data;
    }
    at += 12 + len;
  }
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  size_t row = static_cast<size_t>(d.width) * 3;
  std::vector<uint8_t> raw((row + 1) * static_cast<size_t>(d.height));
  uLongf raw_len = raw.size();
  EXPECT_EQ(
      uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()),
      Z_OK);
  EXPECT_EQ(raw_len, raw.size());
  for (int y = 0; y < d.height; ++y) {
    EXPECT_EQ(raw[y * (row + 1)], 0);  // filter none
    d.rgb.insert(d.rgb.end(), raw.begin() + y * (row + 1) + 1, raw.begin() + (y + 1) * (row + 1));
  }
  return d;
}

TEST(Png, RoundTripPixels) {
  const int w = 7, h = 5;
  std::vector<uint8_t> rgb(w * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 37 + 11);
  Decoded d = decode(encode_png(w, h, rgb));
  EXPECT_EQ(d.width, w);
  EXPECT_EQ(d.height, h);
  EXPECT_EQ(d.rgb, rgb);
  EXPECT_THROW(encode_png(w, h, std::vector<uint8_t>(5)), Error);
}

TEST(Canvas, LinesAndText) {
  Canvas c(40, 20, {255, 255, 255});
  Rgb red{255, 0, 0};
  c.line(0, 0, 39, 19, red);
  EXPECT_EQ(c.get(0, 0), red);
  EXPECT_EQ(c.get(39, 19), red);
  EXPECT_EQ(c.get(20, 10), red);
  EXPECT_EQ(c.get(39, 0), (Rgb{255, 255, 255}));
  c.set(100, 100, red);  // clipped, no crash
  Canvas t(20, 10, {0, 0, 0});
  t.text(1, 1, "1", {255, 255, 255});
  // Glyph '1' row 0 = 0x04: only the middle column lit.
  EXPECT_EQ(t.get(1 + 2, 1), (Rgb{255, 255, 255}));
  EXPECT_EQ(t.get(1 + 1, 1), (Rgb{0, 0, 0}));
  EXPECT_EQ(Canvas::text_width("ab", 2), 22);
  EXPECT_NE(font_glyph('q'), nullptr);  // lower case draws as upper case
  EXPECT_EQ(font_glyph('q'), font_glyph('Q'));
}

TEST(Plot, TicksAndThroughputSeries) {
  auto t = nice_ticks(0, 97, 5);
  EXPECT_EQ(t, (std::vector<double>{0, 20, 40, 60, 80}));
  t = nice_ticks(0.3, 1.2, 4);  // raw step 0.225 -> 0.5
  ASSERT_EQ(t.size(), 2u);
  EXPECT_NEAR(t[0], 0.5, 1e-9);
  EXPECT_NEAR(t[1], 1.0, 1e-9);
  std::vector<RequestRecord> recs(1);
  recs[0].start_s = 1.0;
  recs[0].content_times_s = {0.1, 0.2, 1.1, 1.2};  // absolute 1.1, 1.2, 2.1, 2.2
  recs[0].completion_tokens = 8;
  auto s = output_throughput_series(recs, 4.0, 4);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_DOUBLE_EQ(s[0].second, 0);
  EXPECT_DOUBLE_EQ(s[1].second, 4);
  EXPECT_DOUBLE_EQ(s[2].second, 4);
  EXPECT_DOUBLE_EQ(s[1].first, 1.5);
}

TEST(Plot, WritesADecodablePng) {
  std::vector<RequestRecord> recs(3);
  for (int i = 0; i < 3; ++i) {
    recs[i].start_s = i * 0.5;
    recs[i].content_times_s = {0.1 + i * 0.01, 0.2, 0.3};
    recs[i].ttft_s = recs[i].content_times_s[0];
    recs[i].e2e_s = 0.31;
    recs[i].completion_tokens = 3;
  }
  std::string path = ::testing::TempDir() + "/plot.png";
  write_bench_plot(path, recs, 2.0);
  FILE* f = std::fopen(path.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string png;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) png.append(buf, n);
  std::fclose(f);
  Decoded d = decode(png);
  EXPECT_EQ(d.width, 1200);
  EXPECT_EQ(d.height, 800);
  // Something besides the white background was drawn (axes, text, lines).
  size_t dark = 0;
  for (size_t i = 0; i < d.rgb.size(); i += 3)
    if (d.rgb[i] < 100 && d.rgb[i + 1] < 100) ++dark;
  EXPECT_GT(dark, 2000u);
}

}  // namespace
}  // namespace wideserve::loadgen
