#include "tokenizer/tool_call_parser.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "common/check.h"

namespace wideserve::tokenizer {

namespace {

enum Marker { kCallsBegin, kCallsEnd, kCallBegin, kCallEnd, kSep, kNumMarkers };
constexpr std::array<std::string_view, kNumMarkers> kMarkers = {
    "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"};
constexpr int kPartial = -2;  // a marker may start here but the text ends first
constexpr int kNone = -1;

// Bounds on text that is held before a call is known to be well formed.
constexpr size_t kMaxHead = 256;
constexpr size_t kMaxName = 256;

constexpr std::string_view kFence = "```";

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

struct MarkerHit {
  size_t pos;
  int marker;  // a Marker, kPartial or kNone
};

// First position in text where a marker starts, or where the text ends inside one.
MarkerHit find_marker(std::string_view text) {
  for (size_t pos = text.find('<'); pos != std::string_view::npos; pos = text.find('<', pos + 1)) {
    std::string_view rest = text.substr(pos);
    for (int m = 0; m < kNumMarkers; ++m) {
      if (rest.starts_with(kMarkers[m])) return {pos, m};
      if (rest.size() < kMarkers[m].size() && kMarkers[m].starts_with(rest)) return {pos, kPartial};
    }
  }
  return {text.size(), kNone};
}

// Where the arguments lie inside a call's raw argument text: an optional ```json fence line and
// whitespace are cut at the front; a closing ``` fence and whitespace at the back. Before the end
// (final=false) the back keeps every trailing space or backtick, which may still become a fence,
// and false is returned while the front is undecided.
bool args_span(std::string_view r, bool final, size_t& begin, size_t& end) {
  size_t i = 0;
  while (i < r.size() && is_space(r[i])) ++i;
  std::string_view rest = r.substr(i);
  if (!final && (rest.empty() || (rest.size() < kFence.size() && kFence.starts_with(rest)))) {
    return false;
  }
  if (rest.starts_with(kFence)) {
    size_t nl = r.find('\n', i);
    if (nl == std::string_view::npos) {
      if (!final) return false;
      // "```json{...}" on one line: skip the language tag.
      i += kFence.size();
      while (i < r.size() && std::isalnum(static_cast<unsigned char>(r[i]))) ++i;
    } else {
      i = nl + 1;
    }
    while (i < r.size() && is_space(r[i])) ++i;
    if (!final && i == r.size()) return false;
  }
  begin = i;
  end = r.size();
  if (final) {
    while (end > begin && is_space(r[end - 1])) --end;
    if (end - begin >= kFence.size() && r.substr(end - kFence.size(), kFence.size()) == kFence) {
      end -= kFence.size();
    }
    while (end > begin && is_space(r[end - 1])) --end;
  } else {
    while (end > begin && (is_space(r[end - 1]) || r[end - 1] == '`')) --end;
  }
  return true;
}

ToolCallDelta& delta_for(ToolParseDelta& out, int index) {
  if (out.tool_calls.empty() || out.tool_calls.back().index != index) {
    out.tool_calls.emplace_back();
    out.tool_calls.back().index = index;
  }
  return out.tool_calls.back();
}

}  // namespace

ToolCallParser::ToolCallParser(ToolParserOptions options)
    : rng_(options.id_seed != 0 ? options.id_seed : std::random_device{}()) {}

ToolParseDelta ToolCallParser::push(std::string_view chunk) {
  ToolParseDelta out;
  buffer_.append(chunk);
  process(out, /*final=*/false);
  return out;
}

ToolParseDelta ToolCallParser::finish() {
  ToolParseDelta out;
  process(out, /*final=*/true);
  switch (state_) {
    case State::kCallHead:
    case State::kAfterSep:
    case State::kName:
      abandon_call(out);  // cut off before the name was certain
      break;
    case State::kArgs:
      end_call(out);
      break;
    default:
      break;
  }
  section_space_.clear();  // trailing layout after the calls
  state_ = State::kContent;
  return out;
}

ToolParseResult ToolCallParser::parse(std::string_view text, const ToolParserOptions& options) {
  ToolCallParser parser(options);
  ToolParseResult result;
  accumulate(result, parser.push(text));
  accumulate(result, parser.finish());
  return result;
}

void ToolCallParser::process(ToolParseDelta& out, bool final) {
  for (;;) {
    MarkerHit hit = find_marker(buffer_);
    if (hit.marker >= 0) {
      std::string text = buffer_.substr(0, hit.pos);
      buffer_.erase(0, hit.pos + kMarkers[hit.marker].size());
      consume_text(text, out);
      handle_marker(hit.marker, out);
      continue;
    }
    // Without a marker, everything before a possible partial one is decided; at the end of the
    // stream a partial marker is plain text.
    size_t decided = (hit.marker == kPartial && !final) ? hit.pos : buffer_.size();
    std::string text = buffer_.substr(0, decided);
    buffer_.erase(0, decided);
    consume_text(text, out);
    if (state_ == State::kArgs) emit_args(out, /*final=*/false);
    return;
  }
}

// Feeds marker-free text through the state machine, one decision point at a time.
void ToolCallParser::consume_text(std::string_view text, ToolParseDelta& out) {
  while (!text.empty()) {
    switch (state_) {
      case State::kContent:
        out.content.append(text);
        return;
      case State::kSection: {
        // Between calls whitespace is layout, dropped if another call or the section end
        // follows; before other text it is kept as content.
        size_t i = 0;
        while (i < text.size() && is_space(text[i])) ++i;
        section_space_.append(text.substr(0, i));
        text.remove_prefix(i);
        if (!text.empty()) {
          out.content.append(section_space_);
          section_space_.clear();
          state_ = State::kContent;
        }
        break;
      }
      case State::kCallHead: {
        size_t take = std::min(text.size(), kMaxHead + 1 - std::min(head_.size(), kMaxHead));
        head_.append(text.substr(0, take));
        raw_.append(text.substr(0, take));
        text.remove_prefix(take);
        if (head_.size() > kMaxHead) {
          abandon_call(out);
          state_ = State::kContent;
        }
        break;
      }
      case State::kAfterSep: {
        char c = text.front();
        if (is_space(c)) {
          raw_.push_back(c);
          text.remove_prefix(1);
        } else if (c == '{' || c == '[') {  // V3.1: the head was the name, JSON follows directly
          std::string name(trim(head_));
          if (name.empty()) {
            abandon_call(out);
            state_ = State::kContent;
          } else {
            begin_call(std::move(name), out);
          }
        } else {
          state_ = State::kName;  // V3/R1: the head was the type; the name line follows
        }
        break;
      }
      case State::kName: {
        size_t i = 0;
        while (i < text.size() && text[i] != '\n' && text[i] != '`' && text[i] != '{' &&
               text[i] != '[' && name_.size() + i <= kMaxName) {
          ++i;
        }
        name_.append(text.substr(0, i));
        raw_.append(text.substr(0, i));
        text.remove_prefix(i);
        if (name_.size() > kMaxName) {
          abandon_call(out);
          state_ = State::kContent;
        } else if (!text.empty()) {
          std::string name(trim(name_));
          if (name.empty()) {
            abandon_call(out);
            state_ = State::kContent;
          } else {
            if (text.front() == '\n') text.remove_prefix(1);
            begin_call(std::move(name), out);
          }
        }
        break;
      }
      case State::kArgs:
        for (size_t i = text.size(); i > 0; --i) {
          if (!is_space(text[i - 1]) && text[i - 1] != '`') {
            solid_end_ = region_.size() + i;
            break;
          }
        }
        region_.append(text);
        return;
    }
  }
}

void ToolCallParser::handle_marker(int marker, ToolParseDelta& out) {
  switch (state_) {
    case State::kContent:
    case State::kSection:
      if (marker != kCallEnd && marker != kSep) section_space_.clear();
      if (marker == kCallsBegin) state_ = State::kSection;
      if (marker == kCallsEnd) state_ = State::kContent;
      if (marker == kCallBegin) {
        raw_.clear();
        head_.clear();
        name_.clear();
        state_ = State::kCallHead;
      }
      return;  // a stray call end or separator is dropped
    case State::kCallHead:
      if (marker == kSep) {
        state_ = State::kAfterSep;
        return;
      }
      abandon_call(out);
      break;
    case State::kAfterSep:
    case State::kName: {
      if (marker == kSep) return;
      // The call ended before any arguments: a call without arguments if it has a name.
      std::string name(trim(state_ == State::kAfterSep ? head_ : name_));
      if (name.empty()) {
        abandon_call(out);
      } else {
        begin_call(std::move(name), out);
        end_call(out);
      }
      break;
    }
    case State::kArgs:
      if (marker == kSep) return;
      end_call(out);
      break;
  }
  // The current call is closed; the marker now means what it means between calls.
  state_ = State::kSection;
  if (marker != kCallEnd) handle_marker(marker, out);
}

void ToolCallParser::begin_call(std::string name, ToolParseDelta& out) {
  ToolCallDelta& d = delta_for(out, next_index_);
  d.id = make_id();
  d.type = "function";
  d.name = std::move(name);
  ++next_index_;
  region_.clear();
  args_emitted_ = 0;
  args_begin_ = std::string::npos;
  solid_end_ = 0;
  state_ = State::kArgs;
}

// Emits the decided part of the current call's arguments (all of it when final).
void ToolCallParser::emit_args(ToolParseDelta& out, bool final) {
  size_t begin = 0, end = 0;
  if (final) {
    args_span(region_, true, begin, end);
  } else {
    // The front, once decided, stays; the back is the last char that can't belong to a fence,
    // tracked as text arrives, so long arguments cost linear time.
    if (args_begin_ == std::string::npos) {
      if (!args_span(region_, false, begin, end)) return;
      args_begin_ = begin;
    }
    begin = args_begin_;
    end = std::max(begin, solid_end_);
  }
  size_t len = end - begin;
  if (final && len == 0 && args_emitted_ == 0) {
    delta_for(out, next_index_ - 1).arguments.append("{}");
    args_emitted_ = 2;
    return;
  }
  if (len <= args_emitted_) return;
  delta_for(out, next_index_ - 1)
      .arguments.append(region_, begin + args_emitted_, len - args_emitted_);
  args_emitted_ = len;
}

void ToolCallParser::end_call(ToolParseDelta& out) {
  emit_args(out, /*final=*/true);
  region_.clear();
  raw_.clear();
  head_.clear();
  name_.clear();
  state_ = State::kSection;
}

void ToolCallParser::abandon_call(ToolParseDelta& out) {
  out.content.append(raw_);
  raw_.clear();
  head_.clear();
  name_.clear();
  state_ = State::kSection;
}

std::string ToolCallParser::make_id() {
  static constexpr std::string_view kAlphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id.push_back(kAlphabet[rng_() % kAlphabet.size()]);
  return id;
}

void accumulate(ToolParseResult& result, const ToolParseDelta& delta) {
  result.content += delta.content;
  for (const ToolCallDelta& d : delta.tool_calls) {
    WS_CHECK(d.index >= 0 && d.index <= static_cast<int>(result.tool_calls.size()),
             "tool call delta index {} out of order", d.index);
    if (d.index == static_cast<int>(result.tool_calls.size())) result.tool_calls.emplace_back();
    ToolCall& call = result.tool_calls[d.index];
    if (d.id) call.id = *d.id;
    if (d.type) call.type = *d.type;
    if (d.name) call.name = *d.name;
    call.arguments += d.arguments;
  }
}

}  // namespace wideserve::tokenizer
