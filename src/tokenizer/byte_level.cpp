#include "tokenizer/byte_level.h"

#include "tokenizer/unicode_util.h"

namespace wideserve::tokenizer {
namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 512> from_char{};  // every alphabet code point is below 512
  Tables() {
    from_char.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest are numbered from U+0100 upwards.
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    for (int b = 0; b < 256; ++b) {
      append_utf8(to_utf8[b], to_char[b]);
      from_char[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) {
  return tables().to_char[b];
}
const std::array<std::string, 256>& byte_to_utf8() {
  return tables().to_utf8;
}
int char_to_byte(char32_t c) {
  return c < 512 ? tables().from_char[c] : -1;
}

std::string bytes_to_byte_level(std::string_view raw) {
  const auto& t = tables().to_utf8;
  std::string out;
  out.reserve(raw.size() * 2);
  for (char ch : raw) out += t[static_cast<uint8_t>(ch)];
  return out;
}

}  // namespace wideserve::tokenizer
