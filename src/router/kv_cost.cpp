#include "router/kv_cost.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"

namespace wideserve::router {

double kv_cost(const KvCostInput& in, double prefill_load_scale) {
  const int64_t uncached = std::max<int64_t>(0, in.request_blocks - in.overlap_blocks);
  return static_cast<double>(uncached) * prefill_load_scale + static_cast<double>(in.active_blocks);
}

std::vector<double> kv_softmax(std::span<const double> costs, double temperature) {
  WS_CHECK_ARG(!costs.empty(), "no cost to sample from");
  WS_CHECK_ARG(temperature > 0, "router temperature must be > 0 to sample, got {}", temperature);
  const auto [lo, hi] = std::minmax_element(costs.begin(), costs.end());
  std::vector<double> p(costs.size(), 1.0 / static_cast<double>(costs.size()));
  const double range = *hi - *lo;
  if (!(range > 0)) return p;
  double sum = 0;
  for (size_t i = 0; i < costs.size(); ++i) {
    p[i] = std::exp(-(costs[i] - *lo) / (range * temperature));
    sum += p[i];
  }
  for (double& x : p) x /= sum;  // sum >= 1: the cheapest contributes exp(0)
  return p;
}

size_t select_by_cost(std::span<const double> costs, std::span<const int64_t> loads,
                      double temperature, std::mt19937_64& rng) {
  WS_CHECK_ARG(!costs.empty() && costs.size() == loads.size(), "select_by_cost: {} costs, {} loads",
               costs.size(), loads.size());
  const auto [lo, hi] = std::minmax_element(costs.begin(), costs.end());
  if (temperature > 0 && *hi > *lo) {
    const auto p = kv_softmax(costs, temperature);
    return std::discrete_distribution<size_t>(p.begin(), p.end())(rng);
  }
  // Cheapest, then least loaded, then at random.
  std::vector<size_t> best;
  for (size_t i = 0; i < costs.size(); ++i) {
    if (costs[i] != *lo) continue;
    if (!best.empty() && loads[i] > loads[best.front()]) continue;
    if (!best.empty() && loads[i] < loads[best.front()]) best.clear();
    best.push_back(i);
  }
  if (best.size() == 1) return best.front();
  return best[std::uniform_int_distribution<size_t>(0, best.size() - 1)(rng)];
}

}  // namespace wideserve::router
