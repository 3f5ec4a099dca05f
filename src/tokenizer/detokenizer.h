// Incremental (streaming) detokenizer: token ids in, whole UTF-8 characters out.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace wideserve::tokenizer {

// Streams the text of a growing id sequence. One object per request stream; not thread-safe.
// The tokenizer must outlive it.
//
// Contract: concat(every step() result) + finish() == tokenizer.decode(all ids, skip_special).
// A step never returns a partial UTF-8 character: text whose decode ends in U+FFFD (an incomplete
// sequence so far) is held back until a later id completes it. finish() flushes whatever the full
// decode has beyond what was emitted, so a trailing incomplete sequence comes out there as the
// U+FFFD that decode() gives for it.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Appends one id; returns the newly completed text (often empty). An id outside the vocabulary
  // throws kInvalidArgument and is not added.
  std::string step(int32_t id);
  // Appends several ids at once (speculative/multi-token steps); same contract.
  std::string step(std::span<const int32_t> ids);
  // End of stream: the rest of decode(all ids) not yet emitted. Further steps are invalid.
  std::string finish();

  const std::vector<int32_t>& ids() const { return ids_; }  // all ids so far
  size_t emitted_bytes() const { return emitted_bytes_; }   // bytes returned so far
  bool finished() const { return finished_; }

 private:
  std::string advance(bool final);

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  // ids_[prefix_offset_, read_offset_) is already-emitted context decoded again with every new id,
  // so leading-space rules of the decoder (Metaspace strip at window start) cancel out.
  size_t prefix_offset_ = 0;
  size_t read_offset_ = 0;
  size_t emitted_bytes_ = 0;
  bool finished_ = false;
};

// True when text ends in U+FFFD, i.e. what a lossy decode gives for an incomplete UTF-8 tail.
bool ends_with_replacement_char(std::string_view text);

}  // namespace wideserve::tokenizer
