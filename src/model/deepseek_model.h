// The DeepSeek V2/V3/R1 decoder on the CPU backend: embedding, decoder layers (MLA + dense MLP or
// MoE), final norm and LM head, over a paged latent KV cache.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kvcache/mla_kv_storage.h"
#include "model/forward_batch.h"
#include "model/model_config.h"
#include "model/rope.h"
#include "model/weights.h"

namespace wideserve::model {

// Immutable model; forward() may be called from one thread at a time per KV storage.
class DeepseekModel {
 public:
  DeepseekModel(ModelConfig cfg, ModelWeights weights);

  // Loads config.json and the safetensors of a checkpoint directory.
  static std::unique_ptr<DeepseekModel> load(const std::string& model_dir);

  const ModelConfig& config() const { return cfg_; }
  const ModelWeights& weights() const { return w_; }
  // Frees the routed experts' full weights once every EP rank has taken its own (forward then
  // needs ForwardOptions::ep on MoE layers).
  void release_routed_experts();

  // Runs one step over all sequences: writes their new latent KV rows into `kv` and returns
  // logits [rows, vocab] in *logits, rows = sum over sequences of (all_logits ? n : 1).
  void forward(std::span<const SequenceInput> seqs, kvcache::MlaKvStorage& kv,
               std::vector<float>* logits, const ForwardOptions& opts = {}) const;

 private:
  ModelConfig cfg_;
  ModelWeights w_;
  Rope rope_;
};

}  // namespace wideserve::model
