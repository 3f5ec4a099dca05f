#include "loadgen/sse_parser.h"

namespace wideserve::loadgen {

void SseParser::feed(std::string_view bytes, const Callback& on_event) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (bytes[i] == '\n') {
        ++i;
        continue;
      }
    }
    // Copy up to the next line end in one go: lines are long compared with the per-byte loop.
    size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      return;
    }
    line_.append(bytes.substr(i, end - i));
    skip_lf_ = bytes[end] == '\r';
    i = end + 1;
    process_line(on_event);
  }
}

void SseParser::process_line(const Callback& on_event) {
  if (line_.empty()) {
    // Blank line: dispatch. An event with no data field is dropped, as the spec says.
    if (has_data_) {
      if (!data_.empty() && data_.back() == '\n') data_.pop_back();
      on_event(SseEvent{event_, data_});
    }
    data_.clear();
    event_.clear();
    has_data_ = false;
    return;
  }
  if (line_[0] == ':') {
    line_.clear();
    return;
  }
  std::string_view line = line_;
  std::string_view field = line, value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value);
  }
  line_.clear();
}

}  // namespace wideserve::loadgen
