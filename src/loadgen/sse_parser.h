// Incremental Server-Sent Events parser: bytes may be split across reads anywhere (mid-line,
// between CR and LF, inside a field name); events come out exactly as the spec dispatches them.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace wideserve::loadgen {

// One dispatched event: `event` is the event type ("" when none was given), `data` the joined
// data lines (without the final newline).
struct SseEvent {
  std::string_view event;
  std::string_view data;
};

// Feed bytes as they arrive; each complete event (terminated by a blank line) is handed to the
// callback. Lines end in LF, CRLF or CR; ':' lines are comments; id/retry are ignored.
class SseParser {
 public:
  using Callback = std::function<void(const SseEvent&)>;

  // Parses `bytes`, calling `on_event` for every event completed by them.
  void feed(std::string_view bytes, const Callback& on_event);
  // True if bytes of an unfinished line or event are buffered (a stream ending here was cut).
  bool has_partial() const { return !line_.empty() || has_data_ || !event_.empty(); }

 private:
  void process_line(const Callback& on_event);

  std::string line_;   // current line so far
  std::string data_;   // data buffer of the current event
  std::string event_;  // event type of the current event
  bool has_data_ = false;
  bool skip_lf_ = false;  // the previous byte was CR: a following LF belongs to it
};

}  // namespace wideserve::loadgen
