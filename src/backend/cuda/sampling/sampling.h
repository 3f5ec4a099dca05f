// Token sampling on the GPU: the CPU sampler's rules (engine/sampler.cpp) over a batch of fp32
// logits rows, one thread block per row, so that only token ids (and logprobs) reach the host.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace wideserve::cuda {

// Largest vocabulary launch_sample accepts (fixed-point masses must fit in 64 bits).
inline constexpr int64_t kSampleMaxVocab = int64_t{1} << 19;
// Below this temperature a row is greedy (as the CPU sampler decides).
inline constexpr float kSampleGreedyTemperature = 1e-5f;

// One row's settings (engine::SamplingParams after validation, plus its random stream).
struct SamplingRowParams {
  float temperature;  // < kSampleGreedyTemperature: argmax (first index on ties)
  float top_p;        // (0, 1]; 1 = off
  float min_p;        // [0, 1]; 0 = off
  int32_t top_k;      // <= 0 or >= the number of finite logits: off
  float presence;     // subtracted once from generated tokens (count > 0)
  float frequency;    // subtracted count times from generated tokens
  float repetition;   // HF/CTRL rule on every penalty entry (prompt and generated); 1 = off
  uint64_t seed;      // engine::SamplerState::seed()
  uint64_t step;      // engine::SamplerState::num_generated(): selects the uniform of this draw
};

// A batch of rows to sample. The penalty and ban lists are CSR arrays on the device: row r owns
// entries [offsets[r], offsets[r + 1]); a null offsets pointer means no entries for any row.
struct SampleParams {
  // [rows, vocab] fp32, rewritten in place: bans (-inf) and penalties applied, i.e. the CPU
  // sampler's processed logits before temperature. NaN counts as -inf, +inf as FLT_MAX.
  float* logits = nullptr;
  int64_t rows = 0, vocab = 0;
  const SamplingRowParams* params = nullptr;  // [rows]
  // Distinct tokens seen so far (prompt and generated) with their generated count (0 for
  // prompt-only tokens: repetition penalty only). A token appears at most once per row.
  const int32_t* penalty_tokens = nullptr;
  const int32_t* penalty_counts = nullptr;
  const int32_t* penalty_offsets = nullptr;  // [rows + 1]
  const int32_t* banned_tokens = nullptr;    // never drawn (EOS/stop before min_new_tokens)
  const int32_t* banned_offsets = nullptr;   // [rows + 1]
  // [penalty_offsets[rows]] scratch for the raw values of penalised tokens; required when
  // out_logprob and penalty_offsets are both set.
  float* penalty_scratch = nullptr;
  int32_t* out_ids = nullptr;  // [rows]; -1 when every logit is -inf/NaN or banned
  // [rows] or null: the chosen token's logprob under the raw distribution (log_softmax of the
  // logits before bans and penalties), the value the CPU sampler reports.
  float* out_logprob = nullptr;
};

// Samples every row on `stream`. Deterministic: a row's token depends only on its logits, its
// params (seed, step) and its lists, never on its position in the batch or the batch size.
void launch_sample(const SampleParams& p, cudaStream_t stream);

// The uniform in [0, 1) that (seed, step) selects; equals engine::SamplerState::uniform(step).
double sample_uniform(uint64_t seed, uint64_t step);

}  // namespace wideserve::cuda
