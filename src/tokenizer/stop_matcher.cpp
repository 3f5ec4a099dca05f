#include "tokenizer/stop_matcher.h"

#include <algorithm>

namespace wideserve::tokenizer {

StopMatcher::StopMatcher(std::vector<std::string> stop_strings, bool include_stop_str_in_output)
    : include_stop_(include_stop_str_in_output) {
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) continue;  // would match everywhere; treat as absent
    stops_.push_back(std::move(stop_strings[i]));
    original_index_.push_back(static_cast<int>(i));
  }
}

// Length of the longest suffix of text that is a proper prefix of some stop string.
size_t StopMatcher::partial_match_length(std::string_view text) const {
  size_t best = 0;
  for (const std::string& s : stops_) {
    size_t max_len = std::min(s.size() - 1, text.size());
    for (size_t k = max_len; k > best; --k) {
      if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        best = k;
        break;
      }
    }
  }
  return best;
}

StopResult StopMatcher::push(std::string_view chunk) {
  StopResult result;
  if (stopped_) {
    result.stopped = true;
    result.stop_index = stop_index_;
    return result;
  }
  held_.append(chunk);
  // held_ had no full match before this chunk, so every occurrence found now is new. Pick the one
  // that ends first, then the longest: the one a character-by-character scan would see first.
  size_t best_end = std::string::npos;
  size_t best_start = 0;
  int best = -1;
  for (size_t i = 0; i < stops_.size(); ++i) {
    size_t pos = held_.find(stops_[i]);
    if (pos == std::string::npos) continue;
    size_t end = pos + stops_[i].size();
    if (end < best_end || (end == best_end && pos < best_start)) {
      best_end = end;
      best_start = pos;
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) {
    result.text = held_.substr(0, include_stop_ ? best_end : best_start);
    held_.clear();
    stopped_ = true;
    stop_index_ = original_index_[best];
    result.stopped = true;
    result.stop_index = stop_index_;
    return result;
  }
  size_t keep = partial_match_length(held_);
  result.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return result;
}

std::string StopMatcher::flush() {
  std::string rest;
  rest.swap(held_);
  return rest;
}

}  // namespace wideserve::tokenizer
