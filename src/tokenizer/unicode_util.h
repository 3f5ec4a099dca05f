// UTF-8 helpers and the few Unicode facts (whitespace, categories, normalization forms) the
// tokenizer pipeline needs, matching what Rust's `char` methods report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wideserve::tokenizer {

// Bytes in the UTF-8 sequence that starts with `lead` (1 for continuation/invalid bytes).
inline size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at s[pos] (s must be valid UTF-8) and advances pos.
inline char32_t utf8_next(std::string_view s, size_t& pos) {
  auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) {
    ++pos;
    return b;
  }
  size_t n = utf8_len(b);
  char32_t c = b & (0xFF >> (n + 1));
  for (size_t i = 1; i < n; ++i) c = (c << 6) | (static_cast<unsigned char>(s[pos + i]) & 0x3F);
  pos += n;
  return c;
}

// Start of the code point that ends just before `pos` (s valid UTF-8, pos > 0).
inline size_t utf8_prev(std::string_view s, size_t pos) {
  do {
    --pos;
  } while (pos > 0 && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80);
  return pos;
}

// Appends the UTF-8 encoding of c.
void append_utf8(std::string& out, char32_t c);

// Byte offset of the first invalid UTF-8 sequence, or npos when s is valid.
size_t find_invalid_utf8(std::string_view s);

// Bytes -> text, each maximal invalid subsequence replaced by U+FFFD (as Rust from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);

// Rust char::is_whitespace (Unicode White_Space).
bool is_whitespace(char32_t c);
// Rust char::is_alphanumeric (Alphabetic or Numeric).
bool is_alphanumeric(char32_t c);
// Rust char::is_numeric (general category Nd, Nl or No).
bool is_numeric(char32_t c);
// General category P* (any punctuation) or ASCII punctuation.
bool is_punctuation(char32_t c);
// Whether c is a "word" character for single_word added tokens (alphanumeric, mark, connector).
bool is_word_char(char32_t c);
// General category M* (any combining mark).
bool is_combining_mark(char32_t c);

// Unicode normalization forms of UTF-8 text.
enum class NormForm { kNfc, kNfd, kNfkc, kNfkd };
std::string normalize_unicode(std::string_view text, NormForm form);
// Full Unicode lowercase mapping (as Rust str::to_lowercase).
std::string to_lower(std::string_view text);

}  // namespace wideserve::tokenizer
