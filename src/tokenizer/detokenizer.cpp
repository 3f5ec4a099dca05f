#include "tokenizer/detokenizer.h"

#include "common/check.h"

namespace wideserve::tokenizer {

namespace {
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
}  // namespace

bool ends_with_replacement_char(std::string_view text) {
  return text.ends_with(kReplacementChar);
}

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::step(int32_t id) {
  return step(std::span<const int32_t>(&id, 1));
}

std::string IncrementalDetokenizer::step(std::span<const int32_t> ids) {
  WS_CHECK_ARG(!finished_, "detokenizer step after finish()");
  // Checked before appending, so a rejected id leaves the stream usable.
  for (int32_t id : ids) {
    WS_CHECK_ARG(id >= 0 && id < tokenizer_.vocab_size(), "token id {} out of range [0, {})", id,
                 tokenizer_.vocab_size());
  }
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  return advance(/*final=*/false);
}

std::string IncrementalDetokenizer::finish() {
  WS_CHECK_ARG(!finished_, "detokenizer finish() called twice");
  std::string rest = advance(/*final=*/true);
  finished_ = true;
  return rest;
}

// Decodes the window twice (context only, context + new ids) and emits the difference. Both
// decodes start at the same token, so anything the decoder does at the start of its input
// (Metaspace strips one leading space, skipped special tokens vanish) affects both equally and
// the difference is exactly what the new ids add to the full decode.
std::string IncrementalDetokenizer::advance(bool final) {
  std::span<const int32_t> all(ids_);
  if (!final && all.size() == read_offset_) return {};
  std::string prefix_text = tokenizer_.decode(
      all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_tokens_);
  // Hold back when nothing new appeared (e.g. a skipped special token) or the text ends in an
  // incomplete character. Offsets stay put, so the next decode sees the same window start.
  if (new_text.size() <= prefix_text.size()) return {};
  if (!final && ends_with_replacement_char(new_text)) return {};
  // For the decoders HF ships new_text always extends prefix_text (the window starts on a whole
  // character); if a decoder ever rewrote earlier text we still cut by length, as emitted text
  // cannot be taken back.
  std::string delta = new_text.substr(prefix_text.size());
  prefix_offset_ = read_offset_;
  read_offset_ = all.size();
  emitted_bytes_ += delta.size();
  return delta;
}

}  // namespace wideserve::tokenizer
