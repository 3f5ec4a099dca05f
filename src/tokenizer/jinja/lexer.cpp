#include "tokenizer/jinja/lexer.h"

#include <cstring>

#include "tokenizer/jinja/utf8.h"
#include "tokenizer/jinja/value.h"

namespace wideserve::tokenizer::jinja {
namespace {

// Length of the Python-whitespace code point at s[i] (0 when not whitespace).
size_t space_len(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return py_isspace(c) ? 1 : 0;
  size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  if (i + len > s.size()) return 0;
  std::u32string cp = utf8_decode(s.substr(i, len));
  return cp.size() == 1 && py_isspace(cp[0]) ? len : 0;
}

std::string rstrip_ws(std::string_view s) {
  std::u32string cps = utf8_decode(s);
  size_t n = cps.size();
  while (n > 0 && py_isspace(cps[n - 1])) --n;
  // Re-slice the original bytes to keep invalid bytes untouched.
  size_t bytes = utf8_encode(std::u32string_view(cps).substr(0, n)).size();
  if (is_ascii(s)) return std::string(s.substr(0, n));
  return std::string(s.substr(0, std::min(bytes, s.size())));
}

bool all_space(std::string_view s) {
  if (s.empty()) return false;
  for (char32_t cp : utf8_decode(s))
    if (!py_isspace(cp)) return false;
  return true;
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Python "unicode-escape" decoding of a string literal body.
std::string decode_string(std::string_view body, size_t pos) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    auto hex = [&](int n) -> char32_t {
      char32_t v = 0;
      for (int k = 1; k <= n; ++k) {
        if (i + k >= body.size()) throw JinjaError("truncated \\x/\\u escape in string", pos);
        char h = body[i + k];
        int d = (h >= '0' && h <= '9')   ? h - '0'
                : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                         : -1;
        if (d < 0) throw JinjaError("invalid \\x/\\u escape in string", pos);
        v = v * 16 + d;
      }
      i += n;
      return v;
    };
    switch (e) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\n':
        break;
      case 'x':
        append_utf8(out, hex(2));
        break;
      case 'u':
        append_utf8(out, hex(4));
        break;
      case 'U': {
        char32_t cp = hex(8);
        if (cp > 0x10FFFF) throw JinjaError("invalid \\U escape in string", pos);
        append_utf8(out, cp);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0';
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7';
               ++k)
            v = v * 8 + (body[++i] - '0');
          append_utf8(out, static_cast<char32_t>(v));
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                            ">",  "=",  ".",  ",",  ":",  "|",  "(", ")", "[", "]", "{", "}", ";"};

}  // namespace

std::string normalize_source(std::string_view source, const LexerOptions& opts) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    char c = source[i];
    if (c == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(c);
    }
  }
  if (!opts.keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::pair<int, int> line_col(std::string_view source, size_t pos) {
  int line = 1, col = 1;
  for (size_t i = 0; i < pos && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  return {line, col};
}

std::vector<Token> tokenize(const std::string& src, const LexerOptions& opts) {
  std::vector<Token> toks;
  size_t pos = 0;
  bool line_starting = true;
  const size_t n = src.size();
  while (pos < n) {
    // Find the next tag opener.
    size_t start = pos;
    char kind = 0;
    while (true) {
      start = src.find('{', start);
      if (start == std::string::npos || start + 1 >= n) {
        start = std::string::npos;
        break;
      }
      char k = src[start + 1];
      if (k == '{' || k == '%' || k == '#') {
        kind = k;
        break;
      }
      ++start;
    }
    if (start == std::string::npos) {
      toks.push_back({TokenType::kText, src.substr(pos), pos});
      break;
    }
    std::string text = src.substr(pos, start - pos);
    char sign = start + 2 < n ? src[start + 2] : 0;
    if (sign != '-' && sign != '+') sign = 0;
    if (sign == '-') {
      text = rstrip_ws(text);
    } else if (sign != '+' && opts.lstrip_blocks && kind != '{') {
      size_t l_pos = text.rfind('\n');
      l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
      if ((l_pos > 0 || line_starting) && all_space(std::string_view(text).substr(l_pos)))
        text.resize(l_pos);
    }
    if (!text.empty()) toks.push_back({TokenType::kText, std::move(text), pos});
    size_t body = start + 2 + (sign ? 1 : 0);
    if (kind == '#') {
      size_t end = src.find("#}", body);
      if (end == std::string::npos) throw JinjaError("missing end of comment tag", start);
      size_t p = end + 2;
      char esign = (end > body && (src[end - 1] == '-' || src[end - 1] == '+')) ? src[end - 1] : 0;
      if (esign == '-') {
        while (p < n && space_len(src, p)) p += space_len(src, p);
      } else if (esign != '+' && opts.trim_blocks && p < n && src[p] == '\n') {
        ++p;
      }
      line_starting = p > end + 2 && src[p - 1] == '\n';
      pos = p;
      continue;
    }
    // {% raw %} ... {% endraw %}: data taken verbatim.
    if (kind == '%') {
      size_t q = body;
      while (q < n && space_len(src, q)) q += space_len(src, q);
      if (src.compare(q, 3, "raw") == 0 && (q + 3 >= n || !is_name_char(src[q + 3]))) {
        size_t r = q + 3;
        while (r < n && space_len(src, r)) r += space_len(src, r);
        char rs = 0;
        if (r < n && (src[r] == '-' || src[r] == '+')) rs = src[r++];
        if (src.compare(r, 2, "%}") != 0) throw JinjaError("malformed raw tag", start);
        r += 2;
        if (rs == '+') throw JinjaError("malformed raw tag", start);
        if (rs == '-')
          while (r < n && space_len(src, r)) r += space_len(src, r);
        // Find the matching endraw tag.
        size_t e = r;
        while (true) {
          e = src.find("{%", e);
          if (e == std::string::npos) throw JinjaError("missing end of raw directive", start);
          size_t t = e + 2;
          char es = 0;
          if (t < n && (src[t] == '-' || src[t] == '+')) es = src[t++];
          while (t < n && space_len(src, t)) t += space_len(src, t);
          if (src.compare(t, 6, "endraw") != 0) {
            e += 2;
            continue;
          }
          t += 6;
          while (t < n && space_len(src, t)) t += space_len(src, t);
          char ee = 0;
          if (t < n && (src[t] == '-' || src[t] == '+')) ee = src[t++];
          if (src.compare(t, 2, "%}") != 0) {
            e += 2;
            continue;
          }
          std::string data = src.substr(r, e - r);
          if (es == '-') {
            data = rstrip_ws(data);
          } else if (es != '+' && opts.lstrip_blocks) {
            size_t l_pos = data.rfind('\n');
            if (l_pos != std::string::npos && all_space(std::string_view(data).substr(l_pos + 1)))
              data.resize(l_pos + 1);
          }
          if (!data.empty()) toks.push_back({TokenType::kText, std::move(data), r});
          t += 2;
          if (ee == '-')
            while (t < n && space_len(src, t)) t += space_len(src, t);
          else if (ee != '+' && opts.trim_blocks && t < n && src[t] == '\n')
            ++t;
          line_starting = t > 0 && src[t - 1] == '\n';
          pos = t;
          break;
        }
        continue;
      }
    }
    const bool is_block = kind == '%';
    toks.push_back({is_block ? TokenType::kBlockBegin : TokenType::kVarBegin, "", start});
    size_t p = body;
    std::vector<char> balance;
    bool closed = false;
    while (p < n) {
      // End of tag (only when brackets are balanced).
      if (balance.empty()) {
        const char* close = is_block ? "%}" : "}}";
        char s = src[p];
        if ((s == '-' || s == '+') && src.compare(p + 1, 2, close) == 0 && (is_block || s == '-')) {
          size_t e = p + 3;
          if (s == '-')
            while (e < n && space_len(src, e)) e += space_len(src, e);
          toks.push_back({is_block ? TokenType::kBlockEnd : TokenType::kVarEnd, "", p});
          line_starting = e > p + 3 && src[e - 1] == '\n';
          pos = e;
          closed = true;
          break;
        }
        if (src.compare(p, 2, close) == 0) {
          size_t e = p + 2;
          if (is_block && opts.trim_blocks && e < n && src[e] == '\n') ++e;
          toks.push_back({is_block ? TokenType::kBlockEnd : TokenType::kVarEnd, "", p});
          line_starting = e > p + 2;
          pos = e;
          closed = true;
          break;
        }
      }
      if (size_t w = space_len(src, p)) {
        p += w;
        continue;
      }
      char c = src[p];
      if (is_digit(c)) {
        size_t q = p;
        while (q < n && (is_digit(src[q]) || (src[q] == '_' && q + 1 < n && is_digit(src[q + 1]))))
          ++q;
        bool is_float = false;
        if (q + 1 < n && src[q] == '.' && is_digit(src[q + 1])) {
          is_float = true;
          ++q;
          while (q < n &&
                 (is_digit(src[q]) || (src[q] == '_' && q + 1 < n && is_digit(src[q + 1]))))
            ++q;
        }
        if (q < n && (src[q] == 'e' || src[q] == 'E')) {
          size_t r = q + 1;
          if (r < n && (src[r] == '+' || src[r] == '-')) ++r;
          if (r < n && is_digit(src[r])) {
            is_float = true;
            q = r;
            while (q < n && is_digit(src[q])) ++q;
          }
        }
        std::string num;
        for (size_t i = p; i < q; ++i)
          if (src[i] != '_') num.push_back(src[i]);
        toks.push_back({is_float ? TokenType::kFloat : TokenType::kInt, num, p});
        p = q;
        continue;
      }
      if (is_name_start(c)) {
        size_t q = p;
        while (q < n && is_name_char(src[q])) ++q;
        toks.push_back({TokenType::kName, src.substr(p, q - p), p});
        p = q;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t q = p + 1;
        while (q < n && src[q] != c) q += (src[q] == '\\') ? 2 : 1;
        if (q >= n) throw JinjaError("unterminated string literal", p);
        toks.push_back({TokenType::kString,
                        decode_string(std::string_view(src).substr(p + 1, q - p - 1), p), p});
        p = q + 1;
        continue;
      }
      bool matched = false;
      for (const char* op : kOps) {
        size_t len = std::strlen(op);
        if (src.compare(p, len, op) == 0) {
          if (len == 1 && (c == '(' || c == '[' || c == '{')) {
            balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
          } else if (len == 1 && (c == ')' || c == ']' || c == '}')) {
            if (balance.empty()) throw JinjaError(std::string("unexpected '") + c + "'", p);
            if (balance.back() != c)
              throw JinjaError(
                  std::string("unexpected '") + c + "', expected '" + balance.back() + "'", p);
            balance.pop_back();
          }
          toks.push_back({TokenType::kOp, op, p});
          p += len;
          matched = true;
          break;
        }
      }
      if (!matched) throw JinjaError(std::string("unexpected character '") + c + "'", p);
    }
    if (!closed)
      throw JinjaError(is_block ? "unexpected end of template: missing '%}'"
                                : "unexpected end of template: missing '}}'",
                       start);
  }
  toks.push_back({TokenType::kEof, "", n});
  return toks;
}

}  // namespace wideserve::tokenizer::jinja
