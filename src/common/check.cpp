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
