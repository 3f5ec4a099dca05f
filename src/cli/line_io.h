// The JSON-lines filter loop shared by tokenize/detokenize: read stdin line by line, append each
// line's output to a buffer written in large blocks.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace wideserve::cli {

// Calls fn(line, line_number, out) for every stdin line (numbered from 1); `out` is written to
// stdout in blocks. Lines before a failing one are still written (so callers see how far it
// got), then the exception propagates.
void for_each_stdin_line(const std::function<void(const std::string&, size_t, std::string&)>& fn);

}  // namespace wideserve::cli
