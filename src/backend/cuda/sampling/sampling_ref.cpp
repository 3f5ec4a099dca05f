#include "backend/cuda/sampling/sampling_ref.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>

namespace wideserve::cuda {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float clean(float x) {
  if (std::isnan(x)) return kNegInf;
  return std::min(x, FLT_MAX);
}

}  // namespace

void process_logits_ref(std::span<float> row, const SamplingRowParams& p,
                        std::span<const int32_t> penalty_tokens,
                        std::span<const int32_t> penalty_counts, std::span<const int32_t> banned) {
  const auto V = static_cast<int64_t>(row.size());
  for (size_t j = 0; j < penalty_tokens.size(); ++j) {
    const int32_t t = penalty_tokens[j];
    if (t < 0 || t >= V) continue;
    float x = row[t];
    if (p.repetition != 1.0f) x = x > 0.0f ? x / p.repetition : x * p.repetition;
    const int32_t c = penalty_counts[j];
    if (c > 0 && (p.frequency != 0.0f || p.presence != 0.0f)) {
      const float pen = p.frequency * static_cast<float>(c);
      x -= pen + p.presence;
    }
    row[t] = x;
  }
  for (int32_t t : banned)
    if (t >= 0 && t < V) row[t] = kNegInf;
}

std::vector<double> sample_distribution_ref(std::span<const float> processed,
                                            const SamplingRowParams& p) {
  const auto V = static_cast<int64_t>(processed.size());
  std::vector<float> x(processed.size());
  std::transform(processed.begin(), processed.end(), x.begin(), clean);
  std::vector<int32_t> order;  // finite tokens, by logit descending then index
  for (int32_t i = 0; i < V; ++i)
    if (x[i] > kNegInf) order.push_back(i);
  if (order.empty()) return {};
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  std::vector<double> prob(processed.size(), 0.0);
  if (!(p.temperature >= kSampleGreedyTemperature)) {
    prob[order[0]] = 1.0;
    return prob;
  }
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < order.size()) order.resize(p.top_k);
  const float m = x[order[0]], inv_t = 1.0f / p.temperature;
  std::vector<float> w(processed.size(), 0.0f);
  for (int32_t i : order) w[i] = std::exp((x[i] - m) * inv_t);
  if (p.top_p < 1.0f) {
    // Heaviest first (ties by index); the shortest prefix reaching top_p of the mass.
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return w[a] > w[b]; });
    double total = 0.0;
    for (int32_t i : order) total += w[i];
    const double target = static_cast<double>(p.top_p) * total;
    double cum = 0.0;
    size_t n = 0;
    while (n < order.size()) {
      cum += w[order[n++]];
      if (cum >= target) break;
    }
    order.resize(n);
  }
  double z = 0.0;
  for (int32_t i : order)
    if (w[i] >= p.min_p) z += w[i];
  for (int32_t i : order)
    if (w[i] >= p.min_p) prob[i] = w[i] / z;
  return prob;
}

double raw_logprob_ref(std::span<const float> raw, int32_t token) {
  double m = -INFINITY;
  for (float v : raw) m = std::max<double>(m, clean(v));
  double s = 0.0;
  for (float v : raw) {
    const double c = clean(v);
    if (c > -INFINITY) s += std::exp(c - m);
  }
  return static_cast<double>(clean(raw[token])) - m - std::log(s);
}

}  // namespace wideserve::cuda
