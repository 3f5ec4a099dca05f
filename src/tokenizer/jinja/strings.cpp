#include "tokenizer/jinja/strings.h"

#include <algorithm>

#include "tokenizer/jinja/utf8.h"
#include "tokenizer/jinja/value.h"

namespace wideserve::tokenizer::jinja {

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right) {
  std::u32string set;
  if (chars) set = utf8_decode(*chars);
  auto strip_it = [&](char32_t c) {
    return chars ? set.find(c) != std::u32string::npos : py_isspace(c);
  };
  if (is_ascii(s) && (!chars || is_ascii(*chars))) {
    size_t b = 0, e = s.size();
    if (left)
      while (b < e && strip_it(static_cast<unsigned char>(s[b]))) ++b;
    if (right)
      while (e > b && strip_it(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
  }
  std::u32string cps = utf8_decode(s);
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_it(cps[b])) ++b;
  if (right)
    while (e > b && strip_it(cps[e - 1])) --e;
  return utf8_encode(std::u32string_view(cps).substr(b, e - b));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right) {
  std::vector<std::string> out;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) fail("empty separator");
    if (!from_right) {
      size_t start = 0;
      while (maxsplit-- > 0) {
        size_t p = s.find(*sep, start);
        if (p == std::string_view::npos) break;
        out.emplace_back(s.substr(start, p - start));
        start = p + sep->size();
      }
      out.emplace_back(s.substr(start));
    } else {
      size_t end = s.size();
      while (maxsplit-- > 0 && end >= sep->size()) {
        size_t p = s.rfind(*sep, end - sep->size());
        if (p == std::string_view::npos) break;
        out.emplace_back(s.substr(p + sep->size(), end - p - sep->size()));
        end = p;
      }
      out.emplace_back(s.substr(0, end));
      std::reverse(out.begin(), out.end());
    }
    return out;
  }
  std::u32string cps = utf8_decode(s);
  const size_t n = cps.size();
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < n && py_isspace(cps[i])) ++i;
      if (i >= n) break;
      if (maxsplit == 0) {
        size_t e = n;
        while (e > i && py_isspace(cps[e - 1])) --e;
        out.push_back(utf8_encode(std::u32string_view(cps).substr(i, e - i)));
        break;
      }
      size_t j = i;
      while (j < n && !py_isspace(cps[j])) ++j;
      out.push_back(utf8_encode(std::u32string_view(cps).substr(i, j - i)));
      --maxsplit;
      i = j;
    }
  } else {
    size_t i = n;
    while (true) {
      while (i > 0 && py_isspace(cps[i - 1])) --i;
      if (i == 0) break;
      if (maxsplit == 0) {
        size_t b = 0;
        while (b < i && py_isspace(cps[b])) ++b;
        out.push_back(utf8_encode(std::u32string_view(cps).substr(b, i - b)));
        break;
      }
      size_t j = i;
      while (j > 0 && !py_isspace(cps[j - 1])) --j;
      out.push_back(utf8_encode(std::u32string_view(cps).substr(j, i - j)));
      --maxsplit;
      i = j;
    }
    std::reverse(out.begin(), out.end());
  }
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::u32string cps = utf8_decode(s);
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  const size_t n = cps.size();
  while (i < n) {
    char32_t c = cps[i];
    bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
               c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) {
      ++i;
      continue;
    }
    size_t eol = i + ((c == '\r' && i + 1 < n && cps[i + 1] == '\n') ? 2 : 1);
    out.push_back(
        utf8_encode(std::u32string_view(cps).substr(start, (keepends ? eol : i) - start)));
    start = i = eol;
  }
  if (start < n) out.push_back(utf8_encode(std::u32string_view(cps).substr(start)));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl,
                       int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement between every code point (and at both ends).
    std::u32string cps = utf8_decode(s);
    for (size_t i = 0; i < cps.size(); ++i) {
      if (count-- > 0) out += repl;
      append_utf8(out, cps[i]);
    }
    if (count > 0) out += repl;
    return out;
  }
  size_t start = 0;
  while (count-- > 0) {
    size_t p = s.find(old, start);
    if (p == std::string_view::npos) break;
    out.append(s.substr(start, p - start));
    out.append(repl);
    start = p + old.size();
  }
  out.append(s.substr(start));
  return out;
}

static void append_all(std::string& out, const std::u32string& cps) {
  for (char32_t c : cps) append_utf8(out, c);
}

std::string py_upper_str(std::string_view s) {
  std::string out;
  for (char32_t c : utf8_decode(s)) append_all(out, full_upper(c));
  return out;
}

std::string py_lower_str(std::string_view s) {
  std::string out;
  for (char32_t c : utf8_decode(s)) append_all(out, full_lower(c));
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::u32string cps = utf8_decode(s);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i)
    append_all(out, i == 0 ? full_title(cps[i]) : full_lower(cps[i]));
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (char32_t c : utf8_decode(s)) {
    append_all(out, prev_cased ? full_lower(c) : full_title(c));
    prev_cased = py_is_cased(c);
  }
  return out;
}

std::string jinja_title(std::string_view s) {
  // Jinja: item[0].upper() + item[1:].lower() for pieces split at [-\s({[<]+ runs.
  std::string out;
  bool word_start = true;
  for (char32_t c : utf8_decode(s)) {
    bool sep = py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      append_utf8(out, c);
      word_start = true;
    } else {
      append_all(out, word_start ? full_upper(c) : full_lower(c));
      word_start = false;
    }
  }
  return out;
}

int64_t cp_index(std::string_view s, size_t byte_off) {
  int64_t n = 0;
  for (size_t i = 0; i < byte_off && i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace wideserve::tokenizer::jinja
