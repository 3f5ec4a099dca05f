// MoE feed-forward of one layer on the CPU backend: route, run each expert on its tokens,
// combine with routing weights, add shared experts.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/model_config.h"
#include "model/weights.h"
#include "moe/router.h"

namespace wideserve::model {

// SwiGLU MLP: out[rows, H] = down(silu(gate(x)) * up(x)).
// The model's gate rule (scoring, top-k method, groups, normalisation, scaling) for
// moe::route_tokens.
moe::RouterParams router_params(const ModelConfig& cfg);

// Runs every expert e over its rows: the slots order[count[e] .. count[e+1]) (slot = token * top_k
// + j), each reading x[token]; slot_out[slot] = weights[slot] * down_e(silu_mul(gate_up_e(x))).
// gate_up(e) is [2I, H], down(e) is [H, I]. Experts run in parallel; slots not listed are left
// alone.
void run_experts(const float* x, int64_t top_k, const std::vector<int64_t>& count,
                 const std::vector<int64_t>& order, const float* weights, int64_t hidden,
                 int64_t inter, const std::function<const float*(int64_t)>& gate_up,
                 const std::function<const float*(int64_t)>& down, float* slot_out);

void mlp_forward(const MlpWeights& w, const float* x, float* out, int64_t rows);

// out[rows, H] = routed experts (weighted) + shared experts, for normalized input x[rows, H].
void moe_forward(const ModelConfig& cfg, const MoeWeights& w, const float* x, float* out,
                 int64_t rows);

}  // namespace wideserve::model
