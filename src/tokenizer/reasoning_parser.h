// Reasoning parser: splits "<think>...</think>" model output into reasoning_content and content.
#pragma once

#include <string>
#include <string_view>

namespace wideserve::tokenizer {

// Text split by the parser (a streaming delta, or a whole text).
struct ReasoningDelta {
  std::string reasoning_content;
  std::string content;
  bool operator==(const ReasoningDelta&) const = default;
};

// Behaviour of a reasoning parser.
struct ReasoningOptions {
  std::string start_tag = "<think>";
  std::string end_tag = "</think>";
  // True: reasoning has begun before the output (the R1 template opens <think> in the prompt), so
  // text is reasoning until end_tag; a start_tag at the very start of the output is dropped.
  // False (V3.1 non-thinking style): only an output that starts with start_tag has reasoning.
  bool force_reasoning = true;
  // Drop the whitespace between end_tag and the first content character ("</think>\n\n" is how
  // R1 ends its reasoning).
  bool strip_content_leading_whitespace = true;
  // Seen inside reasoning, this also ends it and starts the content (it is kept there for the
  // tool-call parser); empty disables.
  std::string tool_calls_start = "<｜tool▁calls▁begin｜>";
};

// Options for a named parser: "deepseek_r1" (forced reasoning) or "deepseek_v3" (explicit tag);
// '-' and '_' are interchangeable. Unknown names throw kInvalidArgument.
ReasoningOptions reasoning_options_for(std::string_view parser_name);

// Streaming reasoning splitter; one per request stream; not thread-safe. Tags split across chunks
// in any way are recognised; text that might be the start of a tag is held back until decided.
class ReasoningParser {
 public:
  explicit ReasoningParser(ReasoningOptions options = {});

  // Feeds the next chunk of model output; returns what can be released now.
  ReasoningDelta push(std::string_view chunk);
  // End of stream: releases held-back text (an unfinished tag is plain text).
  ReasoningDelta finish();
  // Whole text at once; identical to pushing it in any chunking and finishing.
  static ReasoningDelta parse(std::string_view text, const ReasoningOptions& options = {});

  bool in_reasoning() const { return state_ == State::kReasoning; }
  bool reasoning_ended() const { return reasoning_ended_; }  // end_tag was seen

 private:
  enum class State { kStart, kReasoning, kContentStart, kContent };
  void process(ReasoningDelta& out, bool final);

  ReasoningOptions options_;
  State state_ = State::kStart;
  std::string buffer_;  // not yet released text
  bool reasoning_ended_ = false;
};

}  // namespace wideserve::tokenizer
