// Greedy decoding of one sequence: one prefill forward over the prompt, then one decode forward
// per new token reading the latent KV cache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/deepseek_model.h"

namespace wideserve::model {

// Returns up to max_new_tokens greedy tokens (stopping early at an EOS id if stop_at_eos).
// If step_logits is given, it receives the logits row used to pick each token.
std::vector<int32_t> greedy_generate(const DeepseekModel& model, std::span<const int32_t> prompt,
                                     int64_t max_new_tokens, bool stop_at_eos,
                                     std::vector<std::vector<float>>* step_logits = nullptr,
                                     const ForwardOptions& opts = {});

// Index of the largest value (first on ties), as torch.argmax.
int32_t argmax(std::span<const float> v);

}  // namespace wideserve::model
