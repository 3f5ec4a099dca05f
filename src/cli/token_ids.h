// Parsing of comma-separated token id lists given on the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wideserve::cli {

// "5,17,42" -> {5, 17, 42}; throws kInvalidArgument naming `flag` on anything else.
std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& flag);

}  // namespace wideserve::cli
