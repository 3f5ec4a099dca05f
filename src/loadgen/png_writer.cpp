#include "loadgen/png_writer.h"

#include <zlib.h>

#include <fstream>
#include <vector>

#include "common/check.h"

namespace wideserve::loadgen {
namespace {

void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// Length, type, data, CRC-32 over type + data.
void put_chunk(std::string& out, const char type[4], const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  put_u32(out, static_cast<uint32_t>(crc));
}

}  // namespace

std::string encode_png(int width, int height, std::span<const uint8_t> rgb) {
  WS_CHECK_ARG(width > 0 && height > 0, "PNG size {}x{} must be positive", width, height);
  const size_t row = static_cast<size_t>(width) * 3;
  WS_CHECK_ARG(rgb.size() == row * static_cast<size_t>(height),
               "PNG pixel buffer has {} bytes, want {}", rgb.size(),
               row * static_cast<size_t>(height));
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type: none
    raw.insert(raw.end(), rgb.begin() + static_cast<ptrdiff_t>(row * y),
               rgb.begin() + static_cast<ptrdiff_t>(row * (y + 1)));
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, raw.data(),
                     static_cast<uLong>(raw.size()), Z_BEST_COMPRESSION);
  WS_CHECK(rc == Z_OK, "zlib compress2 failed: {}", rc);
  z.resize(zlen);

  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, filter 0, no interlace
  put_chunk(out, "IHDR", ihdr);
  put_chunk(out, "IDAT", z);
  put_chunk(out, "IEND", "");
  return out;
}

void write_png(const std::string& path, int width, int height, std::span<const uint8_t> rgb) {
  std::string png = encode_png(width, height, rgb);
  std::ofstream f(path, std::ios::binary);
  WS_CHECK_CODE(kNotFound, f.good(), "cannot write {}", path);
  f.write(png.data(), static_cast<std::streamsize>(png.size()));
  WS_CHECK_CODE(kDataLoss, f.good(), "error writing {}", path);
}

}  // namespace wideserve::loadgen
