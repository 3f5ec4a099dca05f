// Check macros: the one way the project reports a broken invariant or bad input.
// Every failure throws wideserve::Error carrying a code and "file:line: message".
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace wideserve {

// What kind of failure: lets boundaries map errors (e.g. to HTTP status) without parsing text.
enum class ErrorCode {
  kInternal,           // a bug: an invariant did not hold
  kInvalidArgument,    // the caller's input (flag, request, token id) is wrong
  kNotFound,           // a file, tensor or key that must exist does not
  kDataLoss,           // a file exists but is corrupt or truncated
  kResourceExhausted,  // out of memory, KV pages, queue space
  kUnavailable,        // a peer or service is gone or not ready
  kUnimplemented,      // valid request for a feature we do not (yet) have
};

// Name of an error code, for messages.
std::string_view error_code_name(ErrorCode code);

// The message of an exception without the " (file.cpp:NN)" location suffix: what API clients see.
std::string user_message(const std::exception& e);

// The project's exception type.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

namespace detail {
[[noreturn]] void throw_error(ErrorCode code, const char* file, int line, std::string_view expr,
                              std::string_view msg);
inline std::string check_msg() {
  return {};
}
template <typename... Args>
std::string check_msg(fmt::format_string<Args...> f, Args&&... args) {
  return fmt::format(f, std::forward<Args>(args)...);
}
}  // namespace detail

}  // namespace wideserve

// WS_CHECK(cond, "fmt", args...): internal invariant.
#define WS_CHECK(cond, ...)                                                                   \
  do {                                                                                        \
    if (!(cond)) [[unlikely]]                                                                 \
      ::wideserve::detail::throw_error(::wideserve::ErrorCode::kInternal, __FILE__, __LINE__, \
                                       #cond, ::wideserve::detail::check_msg(__VA_ARGS__));   \
  } while (0)

// WS_CHECK_CODE(code, cond, "fmt", args...): failure of the given kind (bad input, corrupt
// file...).
#define WS_CHECK_CODE(code, cond, ...)                                                          \
  do {                                                                                          \
    if (!(cond)) [[unlikely]]                                                                   \
      ::wideserve::detail::throw_error(::wideserve::ErrorCode::code, __FILE__, __LINE__, #cond, \
                                       ::wideserve::detail::check_msg(__VA_ARGS__));            \
  } while (0)

// WS_CHECK_ARG(cond, ...): the caller's input is invalid.
#define WS_CHECK_ARG(cond, ...) WS_CHECK_CODE(kInvalidArgument, cond, __VA_ARGS__)

// WS_THROW(code, "fmt", args...): unconditional failure.
#define WS_THROW(code, ...)                                                              \
  ::wideserve::detail::throw_error(::wideserve::ErrorCode::code, __FILE__, __LINE__, "", \
                                   ::wideserve::detail::check_msg(__VA_ARGS__))
