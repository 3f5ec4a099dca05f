// UTF-8 helpers with Python str semantics (code-point indexing, str.isspace, simple case mapping).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/unicode_util.h"  // append_utf8: one code point -> UTF-8

namespace wideserve::tokenizer::jinja {

// Decodes UTF-8 into code points; invalid bytes map to U+FFFD one byte at a time.
std::u32string utf8_decode(std::string_view s);
// Encodes code points as UTF-8.
std::string utf8_encode(std::u32string_view cps);
// Number of code points (Python len()).
size_t utf8_length(std::string_view s);
// True when every byte is ASCII (fast paths).
bool is_ascii(std::string_view s);
// Python str.isspace() for one code point.
bool py_isspace(char32_t cp);
// Python-like upper/lower mapping for ASCII, Latin-1, Greek and Cyrillic.
char32_t py_upper(char32_t cp);
char32_t py_lower(char32_t cp);
bool py_isalpha(char32_t cp);
// Full case mappings (ß -> "SS", İ -> "i̇", ligatures), as Python's str.upper/lower/title.
std::u32string full_upper(char32_t cp);
std::u32string full_lower(char32_t cp);
std::u32string full_title(char32_t cp);
// Letters with case (Python: cased characters).
bool py_is_cased(char32_t cp);
bool py_isdigit(char32_t cp);
// Python str.isprintable() approximation used by repr().
bool py_isprintable(char32_t cp);

}  // namespace wideserve::tokenizer::jinja
