// MoE gate: expert selection and weights from router logits (DeepSeek V2/V3 rules). This is the
// CPU reference that GPU routing kernels are tested against.
#pragma once

#include <cstdint>

namespace wideserve::moe {

// How router scores are computed from gate logits.
enum class ScoringFunc { kSigmoid, kSoftmax };
// How experts are selected from scores.
enum class TopkMethod { kNoauxTc, kGroupLimitedGreedy, kGreedy };

// Routing rule of one model.
struct RouterParams {
  ScoringFunc scoring = ScoringFunc::kSigmoid;
  TopkMethod method = TopkMethod::kNoauxTc;
  int32_t num_experts = 0;
  int32_t top_k = 0;
  int32_t n_group = 1;
  int32_t topk_group = 1;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
};

// For each of n tokens: logits [n, E] (+ e_score_correction_bias [E] for selection only, may be
// null) -> topk_ids [n, K] and topk_weights [n, K]. Selection: group-limited where the method says
// so; weights: scores of the chosen experts, normalised if norm_topk_prob, times the scaling
// factor.
void route_tokens(const RouterParams& p, const float* logits, const float* bias, int64_t n,
                  int32_t* topk_ids, float* topk_weights);

}  // namespace wideserve::moe
