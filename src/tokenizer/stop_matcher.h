// Stop strings applied to a streamed, detokenized text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::tokenizer {

// What one push() releases.
struct StopResult {
  std::string text;      // text safe to emit now
  bool stopped = false;  // a stop string matched: the stream ends here
  int stop_index = -1;   // index into the stop list of the string that matched, or -1
};

// Cuts a text stream at the first stop string. One object per request stream; not thread-safe.
//
// Text that could still become a stop string (a suffix equal to a proper prefix of one) is held
// back until it either completes a match or can no longer match. "First" means the match that
// ends earliest in the text (ties: the longest), so the result never depends on how the text was
// chunked. Matching is on bytes; for UTF-8 stop strings and text that is whole characters.
// Empty stop strings are ignored.
class StopMatcher {
 public:
  StopMatcher(std::vector<std::string> stop_strings, bool include_stop_str_in_output);

  // Feeds the next chunk. After a stop, returns empty results with stopped=true.
  StopResult push(std::string_view chunk);
  // End of stream without a stop: releases the held-back text.
  std::string flush();

  bool stopped() const { return stopped_; }
  int stop_index() const { return stop_index_; }
  size_t held_bytes() const { return held_.size(); }
  const std::vector<std::string>& stop_strings() const { return stops_; }

 private:
  size_t advance(size_t i, size_t state, char c) const;

  std::vector<std::string> stops_;
  std::vector<std::vector<uint32_t>> failure_;  // KMP failure function per stop string
  std::vector<size_t> states_;       // per stop string: longest suffix of the text that is a prefix
  std::vector<int> original_index_;  // stops_[i] came from the caller's list at this index
  bool include_stop_;
  std::string held_;
  bool stopped_ = false;
  int stop_index_ = -1;
};

}  // namespace wideserve::tokenizer
