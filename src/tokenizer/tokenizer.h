// HF-compatible tokenizer loaded from a model directory (tokenizer.json + tokenizer_config.json).
// Encodes text to ids and decodes ids to text exactly as HF `tokenizers`/`transformers` do.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::tokenizer {

// Special-token facts from tokenizer_config.json that the chat template and the server need.
struct TokenizerConfig {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  bool add_bos_token = false;
  bool add_eos_token = false;
  std::string chat_template;  // empty when the config has none
  bool clean_up_tokenization_spaces = false;
};

// Immutable after construction; safe to use from many threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Loads DIR/tokenizer.json and (if present) DIR/tokenizer_config.json; errors name the file.
  static std::unique_ptr<Tokenizer> from_dir(const std::string& dir);
  // Same from in-memory JSON text (tokenizer_config may be empty).
  static std::unique_ptr<Tokenizer> from_json(std::string_view tokenizer_json,
                                              std::string_view tokenizer_config_json);

  // Text -> ids; add_special_tokens applies the post-processor / BOS as HF's encode() does.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  // Ids -> text as HF's decode(ids, skip_special_tokens=...) with clean_up_tokenization_spaces=False.
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;

  virtual int32_t vocab_size() const = 0;  // including added tokens (max id + 1)
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;  // added token with special=true
  virtual const TokenizerConfig& config() const = 0;
};

}  // namespace wideserve::tokenizer
