// Minimal PNG encoder: 8-bit RGB, one zlib-compressed IDAT, filter 0 on every row.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace wideserve::loadgen {

// Encodes `rgb` (height rows of width * 3 bytes, top row first) as a PNG file image.
std::string encode_png(int width, int height, std::span<const uint8_t> rgb);

// encode_png to a file; throws on I/O errors.
void write_png(const std::string& path, int width, int height, std::span<const uint8_t> rgb);

}  // namespace wideserve::loadgen
