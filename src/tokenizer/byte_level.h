// GPT-2 byte-level alphabet: every byte maps to one printable code point and back.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace wideserve::tokenizer {

// Code point that stands for byte b.
char32_t byte_to_char(uint8_t b);
// UTF-8 encoding of byte_to_char(b) for every byte.
const std::array<std::string, 256>& byte_to_utf8();
// Byte a byte-level code point stands for, or -1 when c is not in the alphabet.
int char_to_byte(char32_t c);
// Maps every byte of `raw` to its byte-level character (UTF-8).
std::string bytes_to_byte_level(std::string_view raw);

}  // namespace wideserve::tokenizer
