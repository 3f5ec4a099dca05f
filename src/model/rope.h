// Rotary position embedding of DeepSeek models: plain or YaRN frequencies, interleaved or
// half-split pair layout, computed in float32 as HF transformers does.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_config.h"

namespace wideserve::model {

// Precomputed inverse frequencies and the cos/sin scaling of one model.
class Rope {
 public:
  explicit Rope(const ModelConfig& cfg);

  int64_t dim() const { return dim_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  float attention_factor() const { return attention_factor_; }

  // Rotates x[0:dim) in place for position pos. Interleaved input pairs (x0,x1),(x2,x3)...;
  // the output is laid out [rotated evens..., rotated odds...] (dot products are unaffected).
  void apply(float* x, int64_t pos) const;
  // Same for n vectors at stride, positions pos[0..n).
  void apply_rows(float* x, int64_t n, int64_t stride, const int64_t* pos) const;

 private:
  int64_t dim_;
  bool interleave_;
  float attention_factor_ = 1.0f;
  std::vector<float> inv_freq_;
};

}  // namespace wideserve::model
