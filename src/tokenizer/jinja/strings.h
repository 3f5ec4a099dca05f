// Python str methods on UTF-8 strings (code-point semantics), shared by filters and methods.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::tokenizer::jinja {

// str.strip/lstrip/rstrip; chars == nullopt strips Python whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right);
// str.split(sep, maxsplit) / str.rsplit; sep == nullopt splits on whitespace runs.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right);
// str.splitlines(keepends).
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
// str.replace(old, new, count).
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl,
                       int64_t count);
std::string py_upper_str(std::string_view s);
std::string py_lower_str(std::string_view s);
std::string py_capitalize(std::string_view s);
// Python str.title().
std::string py_title(std::string_view s);
// Jinja's title filter (word starts after whitespace, '-', '(', '{', '[', '<').
std::string jinja_title(std::string_view s);
// Byte offset -> code-point index.
int64_t cp_index(std::string_view s, size_t byte_off);

}  // namespace wideserve::tokenizer::jinja
