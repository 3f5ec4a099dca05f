// Summary statistics: mean, percentiles (linear interpolation, numpy's default), min/max/std.
#pragma once

#include <cstdint>
#include <vector>

namespace wideserve::loadgen {

// Distribution of one metric over a set of samples. All zero when count == 0.
struct Summary {
  int64_t count = 0;
  double mean = 0, std = 0, min = 0, max = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0;
};

// The p-th percentile (0..100) of ascending-sorted values, interpolating linearly between ranks
// as numpy.percentile does. Empty input gives 0.
double percentile_sorted(const std::vector<double>& sorted, double p);

// Summary of `values` (taken by value: it is sorted).
Summary summarize(std::vector<double> values);

}  // namespace wideserve::loadgen
