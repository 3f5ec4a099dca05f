// OpenAI-style API errors: the status/type/message/param/code an HTTP response carries, and the
// one exception type request parsing throws for bad input.
#pragma once

#include <exception>
#include <string>

namespace wideserve::api {

// One error as the client sees it; status is the HTTP status code.
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";  // invalid_request_error, not_found_error, ...
  std::string message;
  std::string param;  // the offending request field ("" = none)
  std::string code;   // machine-readable code such as "model_not_found" ("" = none)
};

// A 400 invalid_request_error naming `param`.
ApiError invalid_request(std::string message, std::string param = {});

// The exception carrying an ApiError; the only thing parse_request throws for bad input.
class ApiException : public std::exception {
 public:
  explicit ApiException(ApiError error) : error_(std::move(error)) {}
  const ApiError& error() const { return error_; }
  const char* what() const noexcept override { return error_.message.c_str(); }

 private:
  ApiError error_;
};

// OpenAI error object: {"error":{"message","type","param","code"}}; empty param/code are null.
std::string error_body(const ApiError& error);

}  // namespace wideserve::api
