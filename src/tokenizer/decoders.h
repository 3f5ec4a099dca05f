// Decoders of tokenizer.json: turn the token strings of ids back into text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace wideserve::tokenizer {

// One decoding step over the whole token list (HF decode_chain); immutable and thread-safe.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // True for a bare ByteLevel decoder (lets the tokenizer take a byte-table fast path).
  virtual bool is_byte_level() const { return false; }
};

// Builds a decoder from its tokenizer.json object; null JSON gives nullptr.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j);

}  // namespace wideserve::tokenizer
