// Turns one choice's token outputs from a worker into OpenAI choice deltas: incremental
// detokenization, stop strings (held back until decided), the reasoning split, tool calls,
// logprob token texts and finish reasons. One per choice; not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/openai_response.h"
#include "engine/request.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/reasoning_parser.h"
#include "tokenizer/stop_matcher.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tool_call_parser.h"

namespace wideserve::frontend {

// What the request asked for, as far as one choice's output is concerned.
struct ChoiceOptions {
  bool chat = true;
  bool skip_special_tokens = true;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;  // to report vLLM's stop_reason for a stop token
  bool include_stop_str_in_output = false;
  std::optional<tokenizer::ReasoningOptions> reasoning;  // chat with a reasoning parser
  bool parse_tool_calls = false;                         // chat with tools and a tool parser
  bool logprobs = false;
  bool return_token_ids = false;
  uint64_t tool_id_seed = 0;
};

class ChoiceStream {
 public:
  ChoiceStream(const tokenizer::Tokenizer& tok, const ChoiceOptions& opts, int index);

  // Feeds one worker output for this choice; returns the delta to send (check has_content()).
  // After a stop string or a finish, further outputs are ignored.
  api::ChoiceOut push(const engine::RequestOutput& out);
  // Whether a delta carries anything a client must see.
  static bool has_content(const api::ChoiceOut& c);

  bool finished() const { return finished_; }
  // The output text hit a stop string: the engine may stop generating this choice.
  bool stopped_by_string() const { return stopped_by_string_; }
  int64_t completion_tokens() const { return completion_tokens_; }
  // Set when the worker reported an error for this choice.
  const std::string& error() const { return error_; }

 private:
  void route_text(const std::string& text, api::ChoiceOut& d);
  void finish(api::ChoiceOut& d, const engine::RequestOutput& out);
  std::string token_text(int32_t id) const;

  const tokenizer::Tokenizer& tok_;
  ChoiceOptions opts_;
  int index_;
  tokenizer::IncrementalDetokenizer detok_;
  tokenizer::StopMatcher stop_;
  std::optional<tokenizer::ReasoningParser> reasoning_;
  std::optional<tokenizer::ToolCallParser> tools_;
  bool finished_ = false;
  bool stopped_by_string_ = false;
  bool saw_tool_call_ = false;
  int64_t completion_tokens_ = 0;
  int64_t text_chars_ = 0;  // text emitted so far (completions logprobs text_offset)
  std::string error_;
};

// Accumulates streaming deltas of one choice into the final non-streaming choice.
void accumulate_choice(api::ChoiceOut& total, const api::ChoiceOut& delta);

}  // namespace wideserve::frontend
