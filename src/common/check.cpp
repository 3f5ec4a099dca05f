#include "common/check.h"

#include <cstring>

namespace wideserve {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kDataLoss:
      return "data_loss";
    case ErrorCode::kResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kUnimplemented:
      return "unimplemented";
  }
  return "unknown";
}

std::string user_message(const std::exception& e) {
  std::string m = e.what();
  if (dynamic_cast<const Error*>(&e) == nullptr || m.empty() || m.back() != ')') return m;
  const size_t open = m.rfind(" (");
  if (open == std::string::npos) return m;
  const std::string loc = m.substr(open + 2, m.size() - open - 3);
  const size_t colon = loc.rfind(':');
  if (colon == std::string::npos || colon + 1 >= loc.size()) return m;
  for (size_t i = colon + 1; i < loc.size(); ++i)
    if (loc[i] < '0' || loc[i] > '9') return m;
  return m.substr(0, open);
}

namespace detail {

void throw_error(ErrorCode code, const char* file, int line, std::string_view expr,
                 std::string_view msg) {
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::string what;
  if (!msg.empty()) {
    what = fmt::format("{} ({}:{})", msg, base, line);
  } else {
    what = fmt::format("check failed: {} ({}:{})", expr, base, line);
  }
  throw Error(code, what);
}

}  // namespace detail
}  // namespace wideserve
