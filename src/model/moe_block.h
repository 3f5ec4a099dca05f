// MoE feed-forward of one layer on the CPU backend: route, run each expert on its tokens,
// combine with routing weights, add shared experts.
#pragma once

#include <cstdint>

#include "model/model_config.h"
#include "model/weights.h"
#include "moe/router.h"

namespace wideserve::model {

// SwiGLU MLP: out[rows, H] = down(silu(gate(x)) * up(x)).
// The model's gate rule (scoring, top-k method, groups, normalisation, scaling) for
// moe::route_tokens.
moe::RouterParams router_params(const ModelConfig& cfg);

void mlp_forward(const MlpWeights& w, const float* x, float* out, int64_t rows);

// out[rows, H] = routed experts (weighted) + shared experts, for normalized input x[rows, H].
void moe_forward(const ModelConfig& cfg, const MoeWeights& w, const float* x, float* out,
                 int64_t rows);

}  // namespace wideserve::model
