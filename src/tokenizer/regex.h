// PCRE2 (JIT) regular expressions with the Oniguruma flavour HF tokenizer.json patterns assume.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wideserve::tokenizer {

// A [begin, end) byte range of a match.
using Span = std::pair<size_t, size_t>;

// A compiled, immutable pattern; find_all is safe to call from many threads at once.
class Regex {
 public:
  // Compiles `pattern` (UTF-8, Unicode properties); errors name the pattern and the offset.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends every non-overlapping match in `text` (valid UTF-8), left to right, to `out`.
  void find_all(std::string_view text, std::vector<Span>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

// Rewrites Oniguruma-only syntax to PCRE2 (\s and \S also cover U+0085 as Oniguruma's do).
std::string onig_to_pcre2(std::string_view pattern);

// Class ranges (PCRE2 syntax) of code points in general category `property` that HF's regex
// engine knows and the system PCRE2 does not (empty when none or unknown property).
std::string_view pcre2_property_delta(std::string_view property);

// Escapes a literal string for use as a pattern.
std::string regex_escape(std::string_view literal);

}  // namespace wideserve::tokenizer
