// The BPE model: vocabulary, ranked merges, and the per-word merge loop with a word cache.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/pieces.h"

namespace wideserve::tokenizer {

// Hash for heterogeneous string lookups in unordered containers.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Byte-pair-encoding model from tokenizer.json "model" (type BPE); thread-safe.
class BpeModel {
 public:
  // Builds from the "model" object; errors name the bad field or merge.
  explicit BpeModel(const nlohmann::json& model);
  ~BpeModel();

  // Appends the ids of one pre-tokenized word.
  void tokenize(const Piece& word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  class MergeMap;
  class WordCache;

  // Initial symbols of a word (characters, or bytes for byte-level words).
  void initial_symbols(const Piece& word, std::vector<int32_t>& syms) const;
  void merge_small(std::vector<int32_t>& syms) const;
  void merge_large(std::vector<int32_t>& syms) const;
  const Merge* find_merge(int32_t a, int32_t b) const;

  VocabMap vocab_;
  std::vector<std::string> id_to_token_;
  std::unique_ptr<MergeMap> merges_;
  std::array<int32_t, 256> byte_level_ids_{};     // id of each byte's byte-level character
  std::array<int32_t, 256> byte_fallback_ids_{};  // id of "<0xXX>"
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string prefix_;  // continuing_subword_prefix
  std::string suffix_;  // end_of_word_suffix
  std::unique_ptr<WordCache> cache_;
};

}  // namespace wideserve::tokenizer
