// Post-processors of tokenizer.json: add the special tokens around an encoded sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace wideserve::tokenizer {

// Applied after the model when add_special_tokens is set; immutable and thread-safe.
class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Wraps `ids` (one sequence) in the processor's special tokens.
  virtual std::vector<int32_t> process(std::vector<int32_t> ids) const = 0;
};

// Builds a post-processor from its tokenizer.json object; null JSON gives nullptr.
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j);

}  // namespace wideserve::tokenizer
