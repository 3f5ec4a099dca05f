// Added (and special) tokens: matched in the text before the model runs, leftmost-longest,
// honouring lstrip / rstrip / single_word / normalized as HF's AddedVocabulary does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pieces.h"

namespace wideserve::tokenizer {

// One entry of tokenizer.json "added_tokens".
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// The set of added tokens and the matcher over their contents.
class AddedVocabulary {
 public:
  // Adds a token; a later token with the same content replaces the earlier one.
  void add(AddedToken token);
  // Builds the matchers; call after the last add() and before split().
  void finalize();
  // Splits `piece` around the tokens whose `normalized` flag equals `normalized`.
  void split(const Piece& piece, bool normalized, std::vector<Piece>& out) const;

  std::optional<int32_t> id_of(std::string_view content) const;
  const AddedToken* by_id(int32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

 private:
  // Byte trie of the token contents of one matching pass.
  struct Trie {
    std::vector<int32_t> terminal;  // node -> index into tokens_ or -1
    std::unordered_map<uint64_t, int32_t> edges;
    bool first_byte[256] = {};
    int32_t add_node();
    void insert(std::string_view s, int32_t token_index);
    // Longest token starting at text[pos]: (index into tokens_, length) or (-1, 0).
    std::pair<int32_t, size_t> longest_at(std::string_view text, size_t pos) const;
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unordered_map<int32_t, size_t> by_id_;
  Trie raw_trie_, normalized_trie_;
  bool dirty_ = false;
};

}  // namespace wideserve::tokenizer
