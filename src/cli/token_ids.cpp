#include "cli/token_ids.h"

#include <charconv>

#include "common/check.h"

namespace wideserve::cli {

std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string part = text.substr(i, j - i);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    WS_CHECK_ARG(!part.empty() && ec == std::errc() && p == part.data() + part.size() && v >= 0,
                 "{}: '{}' is not a non-negative token id (expected e.g. 5,17,42)", flag, part);
    ids.push_back(v);
    i = j + 1;
  }
  WS_CHECK_ARG(!ids.empty(), "{}: no token ids", flag);
  return ids;
}

}  // namespace wideserve::cli
