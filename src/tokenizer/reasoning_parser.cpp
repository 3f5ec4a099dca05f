#include "tokenizer/reasoning_parser.h"

#include <algorithm>

#include "common/check.h"

namespace wideserve::tokenizer {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Length of the longest suffix of text that is a proper prefix of tag.
size_t partial_suffix(std::string_view text, std::string_view tag) {
  size_t max_len = std::min(tag.size() - 1, text.size());
  for (size_t k = max_len; k > 0; --k) {
    if (text.substr(text.size() - k) == tag.substr(0, k)) return k;
  }
  return 0;
}

}  // namespace

ReasoningOptions reasoning_options_for(std::string_view parser_name) {
  std::string name(parser_name);
  std::replace(name.begin(), name.end(), '-', '_');
  ReasoningOptions options;
  if (name == "deepseek_r1") {
    options.force_reasoning = true;
  } else if (name == "deepseek_v3") {
    options.force_reasoning = false;
  } else {
    WS_THROW(kInvalidArgument, "unknown reasoning parser '{}' (known: deepseek_r1, deepseek_v3)",
             parser_name);
  }
  return options;
}

ReasoningParser::ReasoningParser(ReasoningOptions options) : options_(std::move(options)) {
  WS_CHECK_ARG(!options_.start_tag.empty() && !options_.end_tag.empty(),
               "reasoning tags must not be empty");
}

ReasoningDelta ReasoningParser::push(std::string_view chunk) {
  ReasoningDelta out;
  buffer_.append(chunk);
  process(out, /*final=*/false);
  return out;
}

ReasoningDelta ReasoningParser::finish() {
  ReasoningDelta out;
  process(out, /*final=*/true);
  return out;
}

ReasoningDelta ReasoningParser::parse(std::string_view text, const ReasoningOptions& options) {
  ReasoningParser parser(options);
  ReasoningDelta out = parser.push(text);
  ReasoningDelta rest = parser.finish();
  out.reasoning_content += rest.reasoning_content;
  out.content += rest.content;
  return out;
}

void ReasoningParser::process(ReasoningDelta& out, bool final) {
  const std::string_view start_tag = options_.start_tag;
  const std::string_view end_tag = options_.end_tag;
  for (;;) {
    std::string_view buf = buffer_;
    switch (state_) {
      case State::kStart: {
        // The opening tag only counts at the very start of the output.
        if (buf.starts_with(start_tag)) {
          buffer_.erase(0, start_tag.size());
          state_ = State::kReasoning;
          continue;
        }
        if (!final && start_tag.starts_with(buf)) return;  // undecided (also when empty)
        state_ = options_.force_reasoning ? State::kReasoning : State::kContent;
        continue;
      }
      case State::kReasoning: {
        size_t pos = buf.find(end_tag);
        // A model may start calling tools without closing its reasoning: the calls (marker
        // included) are content for the tool parser.
        std::string_view tools_tag = options_.tool_calls_start;
        size_t tools = tools_tag.empty() ? std::string_view::npos : buf.find(tools_tag);
        if (tools != std::string_view::npos && (pos == std::string_view::npos || tools < pos)) {
          out.reasoning_content.append(buf.substr(0, tools));
          buffer_.erase(0, tools);
          reasoning_ended_ = true;
          state_ = State::kContent;
          continue;
        }
        if (pos != std::string_view::npos) {
          out.reasoning_content.append(buf.substr(0, pos));
          buffer_.erase(0, pos + end_tag.size());
          reasoning_ended_ = true;
          state_ =
              options_.strip_content_leading_whitespace ? State::kContentStart : State::kContent;
          continue;
        }
        size_t keep = 0;
        if (!final) {
          keep = partial_suffix(buf, end_tag);
          if (!tools_tag.empty()) keep = std::max(keep, partial_suffix(buf, tools_tag));
        }
        out.reasoning_content.append(buf.substr(0, buf.size() - keep));
        buffer_.erase(0, buf.size() - keep);
        return;
      }
      case State::kContentStart: {
        // R1 ends reasoning with "</think>\n\n". SGLang strips the content in its whole-text
        // path but not when streaming, so the two disagree; we drop all whitespace up to the
        // first content character in both, so a streamed reply equals the whole one.
        size_t i = 0;
        while (i < buf.size() && is_space(buf[i])) ++i;
        buffer_.erase(0, i);
        if (buffer_.empty()) return;
        state_ = State::kContent;
        continue;
      }
      case State::kContent:
        out.content.append(buffer_);
        buffer_.clear();
        return;
    }
  }
}

}  // namespace wideserve::tokenizer
