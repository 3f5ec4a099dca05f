// Per-sequence token sampler: penalties, temperature, top-k/top-p/min-p, seeded draws, logprobs.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/sampling_params.h"

namespace wideserve::engine {

// One token and its log-probability.
struct TokenLogprob {
  int32_t token;
  float logprob;
};

// The chosen token; logprob and top are filled only when params.top_logprobs >= 0.
// Logprobs come from the model's raw distribution (log_softmax of the unmodified logits, before
// bans, penalties, temperature and truncation), which is what vLLM reports by default.
struct SampleResult {
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;  // top_logprobs alternatives, sorted by logprob descending
};

// What the sampler remembers about one sequence between steps.
class SamplerState {
 public:
  // seed: params.seed if set, else default_seed_if_unseeded (the caller draws it at random).
  // sample_index separates the n > 1 samples of one request: index 0 keeps the seed unchanged.
  SamplerState(const SamplingParams& params, std::span<const int32_t> prompt_tokens,
               uint64_t default_seed_if_unseeded, int32_t sample_index = 0);

  // Records a generated token (for penalties and the step counter of the generator).
  void append(int32_t token);

  // Uniform double in [0, 1) for the given generated-token index; depends only on (seed, step).
  double uniform(int64_t step) const;

  uint64_t seed() const { return seed_; }
  int64_t num_generated() const { return num_generated_; }
  // How often each generated token occurred (presence/frequency penalties).
  const std::unordered_map<int32_t, int32_t>& generated_counts() const { return counts_; }
  // Distinct prompt and generated tokens (repetition penalty).
  const std::vector<int32_t>& seen_tokens() const { return seen_list_; }

 private:
  void mark_seen(int32_t token);

  uint64_t seed_;
  int64_t num_generated_ = 0;
  std::unordered_map<int32_t, int32_t> counts_;
  std::unordered_set<int32_t> seen_;
  std::vector<int32_t> seen_list_;  // same tokens as seen_, in first-seen order (stable iteration)
};

// Chooses the next token from one vocab-sized row of logits, which it modifies in place.
// banned_tokens get -inf first (EOS and stop tokens before min_new_tokens). Throws
// Error(kInvalidArgument) when no token is left to choose. Does not call st.append().
SampleResult sample(std::span<float> logits, const SamplingParams& p, SamplerState& st,
                    std::span<const int32_t> banned_tokens = {});

}  // namespace wideserve::engine
