// The unit the encode pipeline passes between stages: a substring still to be tokenized, or an
// added token already resolved to its id.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::tokenizer {

// One split of the input text.
struct Piece {
  std::string_view text;
  int32_t added_id = -1;  // >= 0: an added token, skipped by normalizers and pre-tokenizers
  bool at_start = false;  // begins at offset 0 of the original input
  // With at_start: bytes of text that still map to original offset 0 (a normalizer may expand
  // the first character); a split starting inside them is also "at start", as in HF.
  uint32_t start_span = 0;
  bool byte_level = false;  // text holds raw bytes still to be mapped to the byte-level alphabet
};

// Owns the strings that rewritten pieces point into (deque: elements never move).
class Arena {
 public:
  std::string_view keep(std::string s) { return strings_.emplace_back(std::move(s)); }

 private:
  std::deque<std::string> strings_;
};

// All pieces of one encode call plus their storage.
struct PieceList {
  std::vector<Piece> pieces;
  Arena arena;
};

}  // namespace wideserve::tokenizer
