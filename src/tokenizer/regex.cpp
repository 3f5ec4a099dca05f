#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/check.h"
#include "tokenizer/unicode_util.h"

namespace wideserve::tokenizer {
namespace {

// Per-thread match state: the JIT stack grows to 8 MiB so long runs of one class never fail.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* ctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(ctx);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

namespace {

// Class body for one Oniguruma escape: PCRE2's property plus the code points newer Unicode added.
std::string property_body(std::string_view prop) {
  return "\\p{" + std::string(prop) + "}" + std::string(pcre2_property_delta(prop));
}

std::string word_body() {
  return property_body("L") + property_body("M") + property_body("N") + property_body("Pc");
}

}  // namespace

std::string onig_to_pcre2(std::string_view p) {
  // Oniguruma's \s is Unicode White_Space (PCRE2's lacks U+0085); its \w also covers marks and
  // connector punctuation; its Unicode tables are newer than the system PCRE2's.
  std::string out;
  out.reserve(p.size() + 16);
  int class_depth = 0;
  auto emit = [&](const std::string& body, bool negate) {
    if (class_depth > 0) {
      out += body;
    } else {
      out += negate ? "[^" : "[";
      out += body;
      out += "]";
    }
  };
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      bool in_class = class_depth > 0;
      if (n == 's' || (n == 'S' && !in_class)) {
        emit("\\s\\x{85}", n == 'S');
      } else if (n == 'w' || (n == 'W' && !in_class)) {
        emit(word_body(), n == 'W');
      } else if (n == 'd' || (n == 'D' && !in_class)) {
        emit(property_body("Nd"), n == 'D');
      } else if ((n == 'p' || (n == 'P' && !in_class)) && i + 2 < p.size() && p[i + 2] == '{') {
        size_t close = p.find('}', i + 3);
        if (close == std::string_view::npos) {
          out.push_back(c);
          out.push_back(n);
          ++i;
          continue;
        }
        std::string_view prop = p.substr(i + 3, close - i - 3);
        bool negate = n == 'P';
        if (!prop.empty() && prop[0] == '^') {
          negate = !negate;
          prop.remove_prefix(1);
        }
        if (pcre2_property_delta(prop).empty() || (negate && in_class)) {
          out.append(p.substr(i, close + 1 - i));
        } else {
          emit(property_body(prop), negate);
        }
        i = close;
        continue;
      } else {
        out.push_back(c);
        out.push_back(n);
      }
      ++i;
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal in both flavours.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out.push_back(c);
  }
  return out;
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/#& ").find(c) != std::string_view::npos || c == '\t' ||
        c == '\n' || c == '\r') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
  std::string translated = onig_to_pcre2(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &err_off, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    WS_THROW(kDataLoss, "invalid regex '{}' at offset {}: {}", pattern_, err_off,
             reinterpret_cast<const char*>(buf));
  }
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  MatchState& st = match_state();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  uint32_t opts = PCRE2_NO_UTF_CHECK;
  while (pos <= text.size()) {
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), pos, opts, st.data, st.ctx)
                  : pcre2_match(code, subject, text.size(), pos, opts, st.data, st.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    WS_CHECK_CODE(kResourceExhausted, rc >= 0, "regex '{}' failed with PCRE2 error {}", pattern_,
                  rc);
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    size_t b = ov[0], e = ov[1];
    out.emplace_back(b, e);
    if (e == b) {
      // Empty match: step over one character, as Oniguruma's iteration does.
      if (e >= text.size()) break;
      pos = e + utf8_len(static_cast<unsigned char>(text[e]));
    } else {
      pos = e;
    }
  }
}

}  // namespace wideserve::tokenizer
