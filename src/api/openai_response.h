// OpenAI-compatible response building: data in, compact JSON text out. Non-streaming bodies,
// streaming chunks (written without an intermediate JSON tree), SSE framing and GET /v1/models.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_error.h"
#include "api/openai_request.h"

namespace wideserve::api {

// One alternative token at a position.
struct TopLogprobOut {
  std::string token;  // token text; may be a partial UTF-8 sequence (bytes carries it exactly)
  float logprob = 0.0f;
};

// The chosen token at a position, with the alternatives to report (most likely first).
struct TokenLogprobOut {
  std::string token;
  float logprob = 0.0f;
  std::vector<TopLogprobOut> top;
};

// One tool call (whole, non-streaming) or one tool-call delta (streaming: id/type/name only on a
// call's first delta).
struct ToolCallOut {
  int index = 0;
  std::optional<std::string> id, type, name;
  std::string arguments;
};

// One choice of a response, or one choice's piece of a stream chunk.
struct ChoiceOut {
  int index = 0;
  std::optional<std::string> role;  // chat: "assistant" on a stream's first chunk
  std::string text;                 // content (chat) or text (completions)
  std::string reasoning_content;    // chat only; omitted when empty
  std::vector<ToolCallOut> tool_calls;
  std::optional<std::vector<TokenLogprobOut>> logprobs;  // this piece's tokens; nullopt = null
  // Completions logprobs: character offset in the choice's text where this piece's first token
  // starts (the frontend carries it across chunks); text_offset counts on from it.
  int64_t text_offset = 0;
  std::optional<std::vector<int32_t>> token_ids;  // vLLM return_token_ids
  // Completions: this choice's prompt ids (batched prompts differ); falls back to meta's.
  std::optional<std::vector<int32_t>> prompt_token_ids;
  std::optional<std::string> finish_reason;  // "stop", "length", "tool_calls", "abort"...
  nlohmann::json stop_reason;  // vLLM: the matched stop string or stop token id; null otherwise
};

// Token counts of a request (all choices).
struct UsageOut {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

// What every body or chunk of one request repeats.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string id;  // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;
  std::string model;
  // vLLM return_token_ids: chat puts them at the top level of the response and of the stream's
  // first chunk; completions in each choice. Set it only where it belongs (first chunk).
  std::optional<std::vector<int32_t>> prompt_token_ids;
};

// Non-streaming body: "chat.completion" (message with role, content, reasoning_content,
// tool_calls) or "text_completion" (text), with usage.
std::string build_response(const ResponseMeta& meta, std::span<const ChoiceOut> choices,
                           const UsageOut& usage);

// One streaming chunk: "chat.completion.chunk" with a delta per choice, or a "text_completion"
// chunk. Pass no choices and a usage for the final usage-only chunk.
std::string build_chunk(const ResponseMeta& meta, std::span<const ChoiceOut> choices,
                        const std::optional<UsageOut>& usage);

// Server-sent event framing of one JSON payload: "data: <json>\n\n".
std::string sse_event(std::string_view json);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";
// An error sent mid-stream as a data event carrying the error object (as vLLM does).
std::string sse_error_event(const ApiError& error);

// One served model.
struct ModelCard {
  std::string id;
  int64_t created = 0;
  std::string owned_by = "wideserve";
  int64_t max_model_len = 0;  // reported (as vLLM does) when > 0
};

// GET /v1/models body: {"object":"list","data":[{"id","object":"model","created","owned_by"}]}.
std::string models_list(std::span<const ModelCard> models);

}  // namespace wideserve::api
