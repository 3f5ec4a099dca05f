#include "tokenizer/unicode_util.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include "common/check.h"
#include "tokenizer/unicode_hf_tables.h"

namespace wideserve::tokenizer {

namespace {

bool in_ranges(std::span<const hf_tables::CharRange> r, char32_t c) {
  size_t lo = 0, hi = r.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (r[mid].hi < c) {
      lo = mid + 1;
    } else if (r[mid].lo > c) {
      hi = mid;
    } else {
      return true;
    }
  }
  return false;
}

const char* find_exception(int form, char32_t c) {
  auto e = hf_tables::exceptions(form);
  size_t lo = 0, hi = e.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (e[mid].cp < c) {
      lo = mid + 1;
    } else if (e[mid].cp > c) {
      hi = mid;
    } else {
      return e[mid].replacement;
    }
  }
  return nullptr;
}

}  // namespace

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or the negated length of its longest valid
// prefix (at least 1) when the sequence is broken: the unit U+FFFD replaces.
int scan_utf8(std::string_view s, size_t i) {
  auto at = [&](size_t k) -> int {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : -1;
  };
  int b = at(0);
  if (b < 0x80) return 1;
  int need;
  int lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    int c = at(k);
    int l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return -k;
  }
  return need + 1;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    int n = scan_utf8(s, i);
    if (n < 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      out.push_back(bytes[i++]);
      continue;
    }
    int n = scan_utf8(bytes, i);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += -n;
    }
  }
  return out;
}

bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return in_ranges(hf_tables::numeric(), c);
}

bool is_alphanumeric(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) || is_numeric(c);
}

bool is_punctuation(char32_t c) {
  return in_ranges(hf_tables::punctuation(), c);
}

bool is_word_char(char32_t c) {
  // Regex \w as HF's single_word check sees it: Alphabetic, marks, Nd, Pc, Join_Control (not
  // other numerics such as U+136D).
  if (c < 0x80)
    return c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  auto u = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL))
    return true;
  return (U_GET_GC_MASK(u) & (U_GC_M_MASK | U_GC_PC_MASK | U_GC_ND_MASK)) != 0;
}

bool is_combining_mark(char32_t c) {
  return c >= 0x80 && in_ranges(hf_tables::stripped_accents(), c);
}

namespace {

std::string icu_normalize(std::string_view text, NormForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = nullptr;
  switch (form) {
    case NormForm::kNfc:
      norm = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormForm::kNfd:
      norm = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormForm::kNfkc:
      norm = icu::Normalizer2::getNFKCInstance(status);
      break;
    case NormForm::kNfkd:
      norm = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  WS_CHECK(U_SUCCESS(status) && norm, "ICU normalizer unavailable: {}", u_errorName(status));
  icu::UnicodeString src = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  icu::UnicodeString dst = norm->normalize(src, status);
  WS_CHECK(U_SUCCESS(status), "ICU normalize failed: {}", u_errorName(status));
  std::string out;
  dst.toUTF8String(out);
  return out;
}

}  // namespace

std::string normalize_unicode(std::string_view text, NormForm form) {
  bool ascii = true;
  for (char ch : text) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return std::string(text);  // every form leaves ASCII unchanged
  // Characters HF's (older) tables treat differently are emitted as HF does; the text between
  // them goes through ICU. Such characters are starters in HF, so cutting there is exact.
  int f = static_cast<int>(form);
  std::string out;
  size_t seg = 0, pos = 0;
  while (pos < text.size()) {
    size_t b = pos;
    char32_t c = utf8_next(text, pos);
    if (c < 0x80) continue;
    if (const char* rep = find_exception(f, c)) {
      out += icu_normalize(text.substr(seg, b - seg), form);
      out += rep;
      seg = pos;
    }
  }
  if (seg == 0) return icu_normalize(text, form);
  out += icu_normalize(text.substr(seg), form);
  return out;
}

std::string to_lower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t b = pos;
    char32_t c = utf8_next(text, pos);
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : static_cast<char>(c));
      continue;
    }
    if (const char* rep = find_exception(4, c)) {
      out += rep;
      continue;
    }
    // Full per-character mapping without context (no final-sigma rule), as HF's Lowercase.
    UChar src[2];
    int32_t n = 0;
    U16_APPEND_UNSAFE(src, n, static_cast<UChar32>(c));
    UChar dst[8];
    UErrorCode status = U_ZERO_ERROR;
    int32_t m = u_strToLower(dst, 8, src, n, "", &status);
    if (U_FAILURE(status)) {
      out.append(text.substr(b, pos - b));
      continue;
    }
    for (int32_t i = 0; i < m;) {
      UChar32 d;
      U16_NEXT_UNSAFE(dst, i, d);
      append_utf8(out, static_cast<char32_t>(d));
    }
  }
  return out;
}

}  // namespace wideserve::tokenizer
