#include "api/api_error.h"

#include "api/json_writer.h"

namespace wideserve::api {

ApiError invalid_request(std::string message, std::string param) {
  ApiError e;
  e.status = 400;
  e.type = "invalid_request_error";
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

std::string error_body(const ApiError& error) {
  // OpenAI's shape (vLLM nests the same way); no top-level "object".
  JsonWriter w(128 + error.message.size());
  w.begin_object().key("error").begin_object();
  w.key("message").string(error.message);
  w.key("type").string(error.type);
  w.key("param");
  error.param.empty() ? w.null() : w.string(error.param);
  w.key("code");
  error.code.empty() ? w.null() : w.string(error.code);
  w.end_object().end_object();
  return w.take();
}

}  // namespace wideserve::api
