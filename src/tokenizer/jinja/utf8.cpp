#include "tokenizer/jinja/utf8.h"

namespace wideserve::tokenizer::jinja {

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || c > 0xF4 || i + len > n) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = c & (0x7F >> len);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string utf8_encode(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps) append_utf8(out, cp);
  return out;
}

size_t utf8_length(std::string_view s) {
  if (is_ascii(s)) return s.size();
  return utf8_decode(s).size();
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

bool py_isspace(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  switch (cp) {
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
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

namespace {

// Simple one-to-one case pairs: Latin-1, Latin Extended-A, Greek, Cyrillic.
char32_t simple_upper(char32_t cp) {
  if (cp >= 'a' && cp <= 'z') return cp - 32;
  if (cp < 0x80) return cp;
  if (cp == 0xB5) return 0x39C;
  if (cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) return cp - 32;
  if (cp == 0xFF) return 0x178;
  if (cp >= 0x100 && cp <= 0x137 && cp != 0x131) return cp & 1 ? cp - 1 : cp;
  if (cp == 0x131) return 'I';
  if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return cp & 1 ? cp : cp - 1;
  if (cp >= 0x14A && cp <= 0x177) return cp & 1 ? cp - 1 : cp;
  if (cp == 0x17F) return 'S';
  if (cp == 0x1C5 || cp == 0x1C6) return 0x1C4;
  if (cp == 0x1C8 || cp == 0x1C9) return 0x1C7;
  if (cp == 0x1CB || cp == 0x1CC) return 0x1CA;
  if (cp >= 0x3B1 && cp <= 0x3C9 && cp != 0x3C2) return cp - 32;
  if (cp == 0x3C2) return 0x3A3;
  if (cp == 0x3AC) return 0x386;
  if (cp >= 0x3AD && cp <= 0x3AF) return cp - 37;
  if (cp == 0x3CC) return 0x38C;
  if (cp == 0x3CD || cp == 0x3CE) return cp - 63;
  if (cp >= 0x430 && cp <= 0x44F) return cp - 32;
  if (cp >= 0x450 && cp <= 0x45F) return cp - 80;
  if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF)) return cp & 1 ? cp - 1 : cp;
  return cp;
}

char32_t simple_lower(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp < 0x80) return cp;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;
  if (cp == 0x178) return 0xFF;
  if (cp >= 0x100 && cp <= 0x137 && cp != 0x130) return cp & 1 ? cp : cp + 1;
  if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return cp & 1 ? cp + 1 : cp;
  if (cp >= 0x14A && cp <= 0x177) return cp & 1 ? cp : cp + 1;
  if (cp == 0x1C4 || cp == 0x1C5) return 0x1C6;
  if (cp == 0x1C7 || cp == 0x1C8) return 0x1C9;
  if (cp == 0x1CA || cp == 0x1CB) return 0x1CC;
  if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 32;
  if (cp == 0x386) return 0x3AC;
  if (cp >= 0x388 && cp <= 0x38A) return cp + 37;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 63;
  if (cp >= 0x410 && cp <= 0x42F) return cp + 32;
  if (cp >= 0x400 && cp <= 0x40F) return cp + 80;
  if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF)) return cp & 1 ? cp : cp + 1;
  return cp;
}

}  // namespace

char32_t py_upper(char32_t cp) {
  return simple_upper(cp);
}
char32_t py_lower(char32_t cp) {
  return simple_lower(cp);
}

std::u32string full_upper(char32_t cp) {
  switch (cp) {
    case 0xDF:
      return U"SS";
    case 0xFB00:
      return U"FF";
    case 0xFB01:
      return U"FI";
    case 0xFB02:
      return U"FL";
    case 0xFB03:
      return U"FFI";
    case 0xFB04:
      return U"FFL";
    case 0xFB06:
      return U"ST";
    case 0x149:
      return U"\u02BCN";
    default:
      return std::u32string(1, simple_upper(cp));
  }
}

std::u32string full_lower(char32_t cp) {
  if (cp == 0x130) return U"i\u0307";
  return std::u32string(1, simple_lower(cp));
}

std::u32string full_title(char32_t cp) {
  switch (cp) {
    case 0xDF:
      return U"Ss";
    case 0xFB00:
      return U"Ff";
    case 0xFB01:
      return U"Fi";
    case 0xFB02:
      return U"Fl";
    case 0xFB03:
      return U"Ffi";
    case 0xFB04:
      return U"Ffl";
    case 0xFB06:
      return U"St";
    case 0x1C4:
    case 0x1C5:
    case 0x1C6:
      return U"\u01C5";
    case 0x1C7:
    case 0x1C8:
    case 0x1C9:
      return U"\u01C8";
    case 0x1CA:
    case 0x1CB:
    case 0x1CC:
      return U"\u01CB";
    default:
      return full_upper(cp);
  }
}

bool py_isalpha(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  if (cp == 0xAA || cp == 0xB5 || cp == 0xBA) return true;
  if (cp >= 0xC0 && cp <= 0x24F) return cp != 0xD7 && cp != 0xF7;
  if (cp >= 0x250 && cp <= 0x2C1) return true;
  if (cp >= 0x370 && cp <= 0x3FF)
    return cp != 0x375 && cp != 0x37E && cp != 0x384 && cp != 0x385 && cp != 0x387;
  if (cp >= 0x400 && cp <= 0x52F) return !(cp >= 0x482 && cp <= 0x489);
  if (cp >= 0x531 && cp <= 0x587)
    return cp != 0x557 && cp != 0x558 && !(cp >= 0x55A && cp <= 0x560);
  if (cp >= 0x5D0 && cp <= 0x5EA) return true;
  if (cp >= 0x620 && cp <= 0x64A) return true;
  if ((cp >= 0x671 && cp <= 0x6D3) || cp == 0x6D5) return true;
  if ((cp >= 0x904 && cp <= 0x939) || cp == 0x93D || cp == 0x950 || (cp >= 0x958 && cp <= 0x961) ||
      (cp >= 0x971 && cp <= 0x980))
    return true;
  if ((cp >= 0xE01 && cp <= 0xE30) || cp == 0xE32 || cp == 0xE33 || (cp >= 0xE40 && cp <= 0xE46))
    return true;
  if (cp >= 0x1E00 && cp <= 0x1FFF) return true;
  if ((cp >= 0x3041 && cp <= 0x3096) || (cp >= 0x309D && cp <= 0x309F) ||
      (cp >= 0x30A1 && cp <= 0x30FA) || (cp >= 0x30FC && cp <= 0x30FF))
    return true;
  if ((cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
      (cp >= 0xAC00 && cp <= 0xD7A3))
    return true;
  if ((cp >= 0xFB00 && cp <= 0xFB06) || (cp >= 0xFF21 && cp <= 0xFF3A) ||
      (cp >= 0xFF41 && cp <= 0xFF5A))
    return true;
  if (cp >= 0x20000 && cp <= 0x2FA1F) return true;
  return false;
}

bool py_isdigit(char32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 0x660 && cp <= 0x669) || (cp >= 0x6F0 && cp <= 0x6F9) ||
         (cp >= 0x966 && cp <= 0x96F) || (cp >= 0xFF10 && cp <= 0xFF19);
}

bool py_is_cased(char32_t cp) {
  return simple_upper(cp) != cp || simple_lower(cp) != cp || cp == 0xDF ||
         (cp >= 0xFB00 && cp <= 0xFB06) || cp == 0x1C5 || cp == 0x1C8 || cp == 0x1CB ||
         cp == 0xAA || cp == 0xBA;
}

bool py_isprintable(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
  if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F))
    return false;
  if ((cp >= 0x205F && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206F) || cp == 0x3000)
    return false;
  if (cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xD800 && cp <= 0xF8FF))
    return false;
  if ((cp >= 0x600 && cp <= 0x605) || cp == 0x61C || cp == 0x6DD || cp == 0x70F || cp == 0x180E)
    return false;
  if (cp >= 0xE0000 || cp > 0x10FFFF) return false;
  return true;
}

}  // namespace wideserve::tokenizer::jinja
