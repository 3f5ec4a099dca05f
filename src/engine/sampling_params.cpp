#include "engine/sampling_params.h"

#include <cmath>

#include "common/check.h"

namespace wideserve::engine {

void SamplingParams::validate(int64_t vocab_size) const {
  WS_CHECK_ARG(std::isfinite(temperature) && temperature >= 0.0f && temperature <= 100.0f,
               "temperature must be in [0, 100], got {}", temperature);
  WS_CHECK_ARG(top_k >= -1, "top_k must be -1 (off) or >= 0, got {}", top_k);
  WS_CHECK_ARG(top_p > 0.0f && top_p <= 1.0f, "top_p must be in (0, 1], got {}", top_p);
  WS_CHECK_ARG(min_p >= 0.0f && min_p <= 1.0f, "min_p must be in [0, 1], got {}", min_p);
  WS_CHECK_ARG(presence_penalty >= -2.0f && presence_penalty <= 2.0f,
               "presence_penalty must be in [-2, 2], got {}", presence_penalty);
  WS_CHECK_ARG(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f,
               "frequency_penalty must be in [-2, 2], got {}", frequency_penalty);
  WS_CHECK_ARG(repetition_penalty > 0.0f && repetition_penalty <= 2.0f,
               "repetition_penalty must be in (0, 2], got {}", repetition_penalty);
  WS_CHECK_ARG(max_new_tokens >= 1, "max_tokens must be >= 1, got {}", max_new_tokens);
  WS_CHECK_ARG(min_new_tokens >= 0 && min_new_tokens <= max_new_tokens,
               "min_tokens must be in [0, max_tokens={}], got {}", max_new_tokens, min_new_tokens);
  WS_CHECK_ARG(top_logprobs >= -1 && top_logprobs <= 20, "top_logprobs must be in [0, 20], got {}",
               top_logprobs);
  WS_CHECK_ARG(n >= 1 && n <= 128, "n must be in [1, 128], got {}", n);
  for (int32_t t : stop_token_ids)
    WS_CHECK_ARG(t >= 0 && t < vocab_size, "stop_token_ids: {} is outside the vocabulary [0, {})",
                 t, vocab_size);
}

}  // namespace wideserve::engine
