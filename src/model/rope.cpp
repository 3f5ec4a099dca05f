#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"

namespace wideserve::model {
namespace {
double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}
}  // namespace

Rope::Rope(const ModelConfig& cfg) : dim_(cfg.qk_rope_head_dim), interleave_(cfg.rope.interleave) {
  const RopeConfig& r = cfg.rope;
  const int64_t half = dim_ / 2;
  inv_freq_.resize(half);
  // pos_freqs = base ** (arange(0, dim, 2) / dim), in float32 as torch computes it.
  std::vector<float> pos_freqs(half);
  for (int64_t i = 0; i < half; ++i) {
    float expo = static_cast<float>(2 * i) / static_cast<float>(dim_);
    pos_freqs[i] = static_cast<float>(
        std::pow(static_cast<double>(static_cast<float>(r.theta)), static_cast<double>(expo)));
  }
  if (!r.yarn) {
    for (int64_t i = 0; i < half; ++i) inv_freq_[i] = 1.0f / pos_freqs[i];
    return;
  }
  const double factor = r.factor;
  if (r.attention_factor > 0) {
    attention_factor_ = static_cast<float>(r.attention_factor);
  } else if (r.mscale != 0 && r.mscale_all_dim != 0) {
    attention_factor_ =
        static_cast<float>(yarn_mscale(factor, r.mscale) / yarn_mscale(factor, r.mscale_all_dim));
  } else {
    attention_factor_ = static_cast<float>(yarn_mscale(factor, 1.0));
  }
  auto correction_dim = [&](double rotations) {
    return (static_cast<double>(dim_) *
            std::log(static_cast<double>(r.original_max_position_embeddings) /
                     (rotations * 2 * M_PI))) /
           (2 * std::log(r.theta));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim_ - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < half; ++i) {
    float ramp = (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low);
    ramp = std::clamp(ramp, 0.0f, 1.0f);
    float extrap_factor = 1.0f - ramp;
    float extrap = 1.0f / pos_freqs[i];
    float interp = 1.0f / (static_cast<float>(factor) * pos_freqs[i]);
    inv_freq_[i] = interp * (1.0f - extrap_factor) + extrap * extrap_factor;
  }
}

void Rope::apply(float* x, int64_t pos) const {
  const int64_t half = dim_ / 2;
  float tmp[512];
  WS_CHECK(dim_ <= 512, "rope dim {} too large", dim_);
  const float p = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    const float ang = inv_freq_[i] * p;
    const float c = std::cos(ang) * attention_factor_, s = std::sin(ang) * attention_factor_;
    const float a = interleave_ ? x[2 * i] : x[i];
    const float b = interleave_ ? x[2 * i + 1] : x[half + i];
    tmp[i] = a * c - b * s;
    tmp[half + i] = b * c + a * s;
  }
  std::copy(tmp, tmp + dim_, x);
}

void Rope::apply_rows(float* x, int64_t n, int64_t stride, const int64_t* pos) const {
  for (int64_t r = 0; r < n; ++r) apply(x + r * stride, pos[r]);
}

}  // namespace wideserve::model
