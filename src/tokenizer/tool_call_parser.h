// Tool-call parser for DeepSeek V3/R1 output into OpenAI `tool_calls` (whole text and streaming).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::tokenizer {

// One complete OpenAI tool call.
struct ToolCall {
  std::string id;
  std::string type = "function";
  std::string name;
  std::string arguments;  // JSON text, as the model wrote it
};

// One OpenAI streaming tool-call delta: id/type/name only on a call's first delta.
struct ToolCallDelta {
  int index = 0;
  std::optional<std::string> id;
  std::optional<std::string> type;
  std::optional<std::string> name;
  std::string arguments;  // next piece of the arguments string (may be empty)
};

// What one push() releases; content and tool-call deltas of the same push.
struct ToolParseDelta {
  std::string content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && tool_calls.empty(); }
};

// A whole parsed output.
struct ToolParseResult {
  std::string content;
  std::vector<ToolCall> tool_calls;
};

// Parser settings.
struct ToolParserOptions {
  uint64_t id_seed = 0;  // seed for the "call_..." ids; 0 draws one from std::random_device
};

// Streaming parser of the DeepSeek tool-call format; one per request stream; not thread-safe.
//
// Accepted (per call, both may appear in one output):
//   V3/R1:  <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
//   V3.1:   <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>
// inside <｜tool▁calls▁begin｜> ... <｜tool▁calls▁end｜> (the outer markers may be missing). Text
// outside calls is content; the markers themselves never are. A malformed call (no separator, empty
// name, cut off before its name is known) comes out as content without its markers. A call cut off
// in its arguments is still reported with the arguments so far; empty arguments become "{}".
// Arguments are passed on as the model wrote them (not validated or re-serialized); whitespace
// between calls is dropped.
// The concatenation of a call's argument pieces equals its final arguments, and the result does
// not depend on how the text was chunked.
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolParserOptions options = {});

  ToolParseDelta push(std::string_view chunk);  // feeds the next chunk of content
  ToolParseDelta finish();                      // end of stream: flushes everything held back
  // Whole text at once; equal to accumulating push(text) + finish().
  static ToolParseResult parse(std::string_view text, const ToolParserOptions& options = {});

  int num_tool_calls() const { return next_index_; }  // calls started so far

 private:
  enum class State { kContent, kSection, kCallHead, kAfterSep, kName, kArgs };
  void process(ToolParseDelta& out, bool final);
  void consume_text(std::string_view text, ToolParseDelta& out);
  void handle_marker(int marker, ToolParseDelta& out);
  void begin_call(std::string name, ToolParseDelta& out);
  void emit_args(ToolParseDelta& out, bool final);
  void end_call(ToolParseDelta& out);
  void abandon_call(ToolParseDelta& out);
  std::string make_id();

  std::mt19937_64 rng_;
  State state_ = State::kContent;
  std::string buffer_;         // text not yet processed (a possible partial marker)
  std::string section_space_;  // whitespace seen between calls, not yet known to be content
  std::string raw_;            // current call's text without markers, for the malformed fallback
  std::string head_;           // text between call begin and separator
  std::string name_;           // V3/R1 name line
  std::string region_;         // raw arguments text (may carry a ``` fence)
  size_t args_emitted_ = 0;
  size_t args_begin_ = std::string::npos;  // where arguments start in region_, once decided
  size_t solid_end_ = 0;  // end of the last region_ char that is not whitespace or a backtick
  int next_index_ = 0;
};

// Adds a streaming delta to a whole result (the way a client assembles a stream).
void accumulate(ToolParseResult& result, const ToolParseDelta& delta);

}  // namespace wideserve::tokenizer
