// CPU reference of launch_sample's rules (plain C++), for the GPU tests.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/cuda/sampling/sampling.h"

namespace wideserve::cuda {

// Applies penalties then bans to one row in place, with the CPU sampler's float operations.
// penalty_tokens/counts and banned are that row's CSR entries.
void process_logits_ref(std::span<float> row, const SamplingRowParams& p,
                        std::span<const int32_t> penalty_tokens,
                        std::span<const int32_t> penalty_counts, std::span<const int32_t> banned);

// The distribution launch_sample draws from for a processed row: probability per token, 0 outside
// the support (top_k by logit, then top_p by weight, then min_p; ties kept by lower index). A
// greedy row gets 1 at its first argmax. Empty when every logit is -inf/NaN.
std::vector<double> sample_distribution_ref(std::span<const float> processed,
                                            const SamplingRowParams& p);

// log_softmax(raw)[token] in float64 (NaN as -inf, +inf as FLT_MAX).
double raw_logprob_ref(std::span<const float> raw, int32_t token);

}  // namespace wideserve::cuda
