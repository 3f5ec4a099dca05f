// Multi-head latent attention on the CPU backend: projections, rope, latent cache write, and
// attention in the expanded or absorbed form.
#pragma once

#include <span>

#include "kvcache/mla_kv_storage.h"
#include "model/forward_batch.h"
#include "model/model_config.h"
#include "model/rope.h"
#include "model/weights.h"

namespace wideserve::model {

// Runs the attention block of layer `layer` for all rows of the batch.
// x: normalized hidden states [rows, H]; out: [rows, H] (o_proj output, not yet residual-added).
// positions: absolute position of every row; seq_rows: first row of each sequence (size seqs+1).
void mla_attention(const ModelConfig& cfg, const Rope& rope, const AttentionWeights& w,
                   int64_t layer, std::span<const SequenceInput> seqs,
                   std::span<const int64_t> seq_rows, std::span<const int64_t> positions,
                   const float* x, float* out, kvcache::MlaKvStorage& kv, AttentionMode mode);

}  // namespace wideserve::model
