// Per-request sampling and stopping settings (OpenAI / SGLang semantics), validated once.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace wideserve::engine {

// How one request's tokens are chosen and when it stops.
struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  int32_t top_k = -1;               // -1 or 0 = all tokens
  float top_p = 1.0f;               // (0, 1]
  float min_p = 0.0f;               // [0, 1]
  float presence_penalty = 0.0f;    // [-2, 2], on generated tokens
  float frequency_penalty = 0.0f;   // [-2, 2], on generated tokens
  float repetition_penalty = 1.0f;  // (0, 2], on prompt and generated tokens (HF/CTRL rule)
  std::optional<uint64_t> seed;     // same seed + prompt -> same tokens, whatever the batch
  int32_t max_new_tokens = 16;
  int32_t min_new_tokens = 0;  // EOS and stop_token_ids are banned before this many tokens
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  int32_t top_logprobs = -1;  // -1: no logprobs; 0: chosen token only; k: also the top k
  int32_t n = 1;              // parallel samples sharing the prompt's KV

  // Throws Error(kInvalidArgument) naming the field when a value is out of range.
  void validate(int64_t vocab_size) const;
};

}  // namespace wideserve::engine
