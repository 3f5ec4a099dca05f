// The tokenizer.json pipeline behind the Tokenizer interface: added tokens, normalizer,
// pre-tokenizer, BPE model, post-processor, decoder.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::tokenizer {

// Tokenizer built from parsed tokenizer.json and tokenizer_config.json.
class HfTokenizer : public Tokenizer {
 public:
  HfTokenizer(const nlohmann::json& tokenizer, const nlohmann::json& config);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::optional<std::string> id_to_token(int32_t id) const override;
  bool is_special(int32_t id) const override;
  const TokenizerConfig& config() const override { return config_; }

 private:
  const std::string* token_string(int32_t id) const;

  AddedVocabulary added_;
  bool has_normalized_added_ = false;
  bool has_raw_added_ = false;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<std::string> byte_level_bytes_;  // per id, for a bare ByteLevel decoder
  std::vector<uint8_t> special_;               // per id: added token with special=true
  int32_t vocab_size_ = 0;
  TokenizerConfig config_;
};

// Reads the TokenizerConfig fields from tokenizer_config.json (null JSON gives defaults).
TokenizerConfig parse_tokenizer_config(const nlohmann::json& j);

}  // namespace wideserve::tokenizer
