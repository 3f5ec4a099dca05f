// Interprets the SSE payloads of an OpenAI streaming response (chat or completions): which chunks
// carry content, the usage block, [DONE], and in-stream errors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "loadgen/types.h"

namespace wideserve::loadgen {

class OpenAiStreamDecoder {
 public:
  explicit OpenAiStreamDecoder(Endpoint endpoint) : endpoint_(endpoint) {}

  // Handles one SSE data payload; returns true if it carried generated text (content,
  // reasoning_content or completion text). After an error the decoder ignores further input.
  bool on_data(std::string_view data);

  bool done() const { return done_; }  // saw `data: [DONE]`
  bool has_usage() const { return prompt_tokens_ >= 0 && completion_tokens_ >= 0; }
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t completion_tokens() const { return completion_tokens_; }
  // "" while fine; "stream_error" (an error object in the stream) or "bad_response" (not JSON).
  const std::string& error_kind() const { return error_kind_; }
  const std::string& error_message() const { return error_message_; }

 private:
  Endpoint endpoint_;
  bool done_ = false;
  int64_t prompt_tokens_ = -1, completion_tokens_ = -1;
  std::string error_kind_, error_message_;
};

}  // namespace wideserve::loadgen
