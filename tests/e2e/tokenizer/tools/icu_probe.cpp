// Prints ICU's per-code-point results (only where they differ from the input) as JSON, for
// gen_unicode_delta.py: {"NFC": {cp: [cps]}, ..., "lower": {...}, "punct": [...], ...}.
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include <cstdio>
#include <string>

static void dump_map(const char* name, const icu::Normalizer2* n, bool lower, bool last) {
  std::printf("\"%s\":{", name);
  bool first = true;
  for (UChar32 c = 1; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    icu::UnicodeString s(c), out;
    UErrorCode st = U_ZERO_ERROR;
    if (lower) {
      UChar src[2], dst[8];
      int32_t k = 0;
      U16_APPEND_UNSAFE(src, k, c);
      int32_t m = u_strToLower(dst, 8, src, k, "", &st);
      out = icu::UnicodeString(dst, m);
    } else {
      out = n->normalize(s, st);
    }
    if (out == s) continue;
    std::printf("%s\"%d\":[", first ? "" : ",", c);
    first = false;
    for (int32_t i = 0; i < out.length();) {
      UChar32 d = out.char32At(i);
      std::printf("%s%d", i ? "," : "", d);
      i += U16_LENGTH(d);
    }
    std::printf("]");
  }
  std::printf("}%s", last ? "" : ",");
}

int main() {
  UErrorCode st = U_ZERO_ERROR;
  std::printf("{");
  dump_map("NFC", icu::Normalizer2::getNFCInstance(st), false, false);
  dump_map("NFD", icu::Normalizer2::getNFDInstance(st), false, false);
  dump_map("NFKC", icu::Normalizer2::getNFKCInstance(st), false, false);
  dump_map("NFKD", icu::Normalizer2::getNFKDInstance(st), false, false);
  dump_map("lower", nullptr, true, true);
  std::printf("}\n");
}
