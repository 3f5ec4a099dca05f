#include "tokenizer/stop_matcher.h"

#include <algorithm>

namespace wideserve::tokenizer {

StopMatcher::StopMatcher(std::vector<std::string> stop_strings, bool include_stop_str_in_output)
    : include_stop_(include_stop_str_in_output) {
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) continue;  // would match everywhere; treat as absent
    stops_.push_back(std::move(stop_strings[i]));
    original_index_.push_back(static_cast<int>(i));
    // fail[k] = length of the longest proper border of stop[0..k].
    const std::string& st = stops_.back();
    std::vector<uint32_t> fail(st.size(), 0);
    for (size_t k = 1, b = 0; k < st.size(); ++k) {
      while (b > 0 && st[k] != st[b]) b = fail[b - 1];
      if (st[k] == st[b]) ++b;
      fail[k] = static_cast<uint32_t>(b);
    }
    failure_.push_back(std::move(fail));
  }
  states_.assign(stops_.size(), 0);
}

// One KMP step: the new length of the longest suffix of the text that is a prefix of stop i.
size_t StopMatcher::advance(size_t i, size_t state, char c) const {
  const std::string& s = stops_[i];
  while (state > 0 && (state == s.size() || s[state] != c)) state = failure_[i][state - 1];
  return s[state] == c ? state + 1 : state;
}

StopResult StopMatcher::push(std::string_view chunk) {
  StopResult result;
  if (stopped_) {
    result.stopped = true;
    result.stop_index = stop_index_;
    return result;
  }
  size_t base = held_.size();
  held_.append(chunk);
  // Each stop string's automaton runs over the new bytes only, so the cost is linear in the
  // text however long the stop strings are. Pick the match that ends first, then the longest:
  // the one a character-by-character scan would see first.
  size_t best_end = std::string::npos;
  size_t best_len = 0;
  int best = -1;
  size_t keep = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    size_t state = states_[i];
    for (size_t p = 0; p < chunk.size() && base + p < best_end; ++p) {
      state = advance(i, state, chunk[p]);
      if (state == stops_[i].size()) {
        size_t end = base + p + 1;
        if (end < best_end || (end == best_end && state > best_len)) {
          best_end = end;
          best_len = state;
          best = static_cast<int>(i);
        }
        break;
      }
    }
    states_[i] = state;
    keep = std::max(keep, state);
  }
  if (best >= 0) {
    result.text = held_.substr(0, include_stop_ ? best_end : best_end - best_len);
    held_.clear();
    stopped_ = true;
    stop_index_ = original_index_[best];
    result.stopped = true;
    result.stop_index = stop_index_;
    return result;
  }
  // Hold the longest suffix that may still grow into a stop string.
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
