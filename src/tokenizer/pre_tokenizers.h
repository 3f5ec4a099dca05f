// Pre-tokenizers of tokenizer.json: split segments into words (and may rewrite them).
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/pieces.h"
#include "tokenizer/regex.h"

namespace wideserve::tokenizer {

// What Split does with the delimiters it finds.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// One pre-tokenization step; immutable and thread-safe.
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Rewrites `list.pieces`: pieces that are added tokens pass through untouched.
  virtual void pre_tokenize(PieceList& list) const = 0;
};

// Splits `piece` at the delimiter spans `matches` (sorted, disjoint) per `behavior`.
void split_piece(const Piece& piece, const std::vector<Span>& matches, SplitBehavior behavior,
                 bool invert, std::vector<Piece>& out);

// Builds a pre-tokenizer from its tokenizer.json object; null JSON gives nullptr.
// `last` tells a ByteLevel step whether anything runs after it (then it must rewrite the text).
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, bool last = true);

}  // namespace wideserve::tokenizer
