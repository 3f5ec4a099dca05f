// Generated character tables that make our Unicode answers match HF tokenizers' exactly.
#pragma once

#include <cstdint>
#include <span>

namespace wideserve::tokenizer::hf_tables {

// A code point whose HF result (UTF-8) differs from ICU's.
struct CharException {
  char32_t cp;
  const char* replacement;
};
// An inclusive code point range.
struct CharRange {
  char32_t lo, hi;
};

// Per-character exceptions, sorted by cp: form 0 NFC, 1 NFD, 2 NFKC, 3 NFKD, 4 lowercase.
std::span<const CharException> exceptions(int form);
// HF's Punctuation pre-tokenizer set, Digits (char::is_numeric) set, StripAccents removal set.
std::span<const CharRange> punctuation();
std::span<const CharRange> numeric();
std::span<const CharRange> stripped_accents();

}  // namespace wideserve::tokenizer::hf_tables
