// A tiny RGB rasterizer for plots: pixels, lines, rectangles and text in a built-in 5x7 font.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace wideserve::loadgen {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

class Canvas {
 public:
  Canvas(int width, int height, Rgb background);

  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<uint8_t>& pixels() const { return rgb_; }  // rows of width * 3 bytes
  Rgb get(int x, int y) const;

  void set(int x, int y, Rgb c);  // clipped to the canvas
  void fill_rect(int x, int y, int w, int h, Rgb c);
  // Bresenham line with a square pen `thickness` pixels wide.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
  // Text with its top-left corner at (x, y); letters are drawn upper-case; unknown glyphs as boxes.
  void text(int x, int y, std::string_view s, Rgb c, int scale = 1);
  // Rotated 90 degrees counter-clockwise (reads bottom to top), top-left corner at (x, y).
  void text_vertical(int x, int y, std::string_view s, Rgb c, int scale = 1);

  static int text_width(std::string_view s, int scale = 1) {
    return s.empty() ? 0 : static_cast<int>(s.size()) * 6 * scale - scale;
  }
  static int text_height(int scale = 1) { return 7 * scale; }

 private:
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

// The 7 rows (5 low bits each, bit 4 = leftmost column) of a character's glyph, or null.
const uint8_t* font_glyph(char c);

}  // namespace wideserve::loadgen
