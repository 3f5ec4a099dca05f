// Normalizers of tokenizer.json: rewrite each not-yet-tokenized segment before pre-tokenization.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace wideserve::tokenizer {

// One normalization step; immutable and thread-safe.
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Returns the normalized form of `text` (valid UTF-8).
  virtual std::string normalize(std::string_view text) const = 0;
};

// Builds a normalizer from its tokenizer.json object; null JSON gives nullptr.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);

}  // namespace wideserve::tokenizer
