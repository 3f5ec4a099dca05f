// The KV router's cost and choice (Dynamo's): cost = uncached prefill blocks x prefill_load_scale
// + active blocks; temperature 0 takes the cheapest, T > 0 samples
// p_i ~ exp(-(c_i - c_min) / ((c_max - c_min) T)). Ties (equal cost at T = 0, or every cost equal)
// go to the smallest load, then at random.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace wideserve::router {

// One candidate's figures for a request.
struct KvCostInput {
  int64_t request_blocks = 0;  // blocks of the prompt (a partial last block counts)
  int64_t overlap_blocks = 0;  // leading blocks the candidate has cached
  int64_t active_blocks = 0;   // blocks of the requests already running there
  int64_t load = 0;            // tie-break: requests in flight there
};

// Uncached prefill blocks x prefill_load_scale + active blocks.
double kv_cost(const KvCostInput& in, double prefill_load_scale);

// Probabilities of each cost at `temperature` (> 0); all equal when the costs are.
std::vector<double> kv_softmax(std::span<const double> costs, double temperature);

// Index of the chosen candidate (costs and loads have the same, non-zero size).
size_t select_by_cost(std::span<const double> costs, std::span<const int64_t> loads,
                      double temperature, std::mt19937_64& rng);

}  // namespace wideserve::router
