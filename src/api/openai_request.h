// OpenAI-compatible request parsing: the JSON body of POST /v1/chat/completions or
// /v1/completions in, a validated CompletionRequest out. Pure: no tokenizer, no model.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_error.h"

namespace wideserve::api {

// Which OpenAI endpoint a body was sent to.
enum class Endpoint { kChatCompletions, kCompletions };

// One completions prompt: text to tokenize, or token ids as given.
struct PromptInput {
  bool is_tokens = false;
  std::string text;                // when !is_tokens
  std::vector<int32_t> token_ids;  // when is_tokens (never empty, every id in [0, INT32_MAX])
};

// tool_choice: "none", "auto", "required" or one named function.
struct ToolChoice {
  enum class Mode { kNone, kAuto, kRequired, kFunction };
  Mode mode = Mode::kNone;    // default: kAuto when tools are given, else kNone
  std::string function_name;  // when mode == kFunction (always one of the request's tools)
};

// A validated request. std::nullopt means "not given": the frontend applies the model's defaults
// (generation_config, context length) before building engine sampling params.
struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string model;

  // Chat only.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // text parts -> strings
  nlohmann::ordered_json tools;  // null when absent or empty, else [{type, function{...}}]
  ToolChoice tool_choice;
  nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();
  bool add_generation_prompt = true;
  bool continue_final_message = false;

  // Completions only: one entry per prompt (a batch gives n choices per prompt).
  std::vector<PromptInput> prompts;

  // Sampling and stopping.
  std::optional<int32_t> max_tokens;        // max_tokens or max_completion_tokens, >= 1
  std::optional<float> temperature;         // [0, 2]; nvext.greed_sampling forces 0
  std::optional<float> top_p;               // (0, 1]
  std::optional<int32_t> top_k;             // -1 (all) or >= 1; 0 is read as -1
  std::optional<float> min_p;               // [0, 1]
  std::optional<float> repetition_penalty;  // (0, 2]
  float presence_penalty = 0.0f;            // [-2, 2]
  float frequency_penalty = 0.0f;           // [-2, 2]
  int32_t n = 1;                            // [1, 128]
  std::optional<uint64_t> seed;             // int64 in JSON, same bits here
  std::vector<std::string> stop;            // up to 16 non-empty strings
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t min_tokens = 0;  // <= max_tokens when that is given
  bool include_stop_str_in_output = false;

  // Logprobs, unified: chat logprobs=true/top_logprobs=k and completions logprobs=k both give
  // logprobs=true, top_logprobs=k (0..20).
  bool logprobs = false;
  int32_t top_logprobs = 0;

  // Output shape.
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage (default false)
  bool continuous_usage_stats = false;  // stream_options.continuous_usage_stats (vLLM)
  bool return_token_ids = false;        // vLLM: prompt_token_ids and token_ids in the output
  bool skip_special_tokens = true;
  bool spaces_between_special_tokens = true;
  std::string user;  // accepted for logging; no effect
};

// Parses and validates a request body for `ep`. Throws ApiException (status 400, param = the
// field) on malformed JSON or UTF-8, wrong types, out-of-range values, unknown or unsupported
// fields; never any other exception type for bad input.
CompletionRequest parse_request(std::string_view body, Endpoint ep);

// The request part of a chat template context: messages, tools (when given) and
// add_generation_prompt, then chat_template_kwargs on top (they override, as in vLLM). Feed it to
// tokenizer::hf_chat_context. continue_final_message is not a template variable: the frontend
// trims the rendered prompt after the final message itself, as HF does.
nlohmann::ordered_json chat_template_input(const CompletionRequest& req);

}  // namespace wideserve::api
