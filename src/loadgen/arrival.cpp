#include "loadgen/arrival.h"

#include <cmath>

#include "common/check.h"

namespace wideserve::loadgen {

// Gamma(shape k = burstiness, scale theta = 1 / (rate * k)) has mean 1 / rate for every k and a
// coefficient of variation 1 / sqrt(k).
ArrivalProcess::ArrivalProcess(double rate, double burstiness, uint64_t seed)
    : unlimited_(!(rate > 0) || std::isinf(rate)), rng_(seed) {
  WS_CHECK_ARG(burstiness > 0, "burstiness must be > 0, got {}", burstiness);
  if (!unlimited_) gamma_ = std::gamma_distribution<double>(burstiness, 1.0 / (rate * burstiness));
}

double ArrivalProcess::next_gap_s() {
  if (unlimited_) return 0;
  return gamma_(rng_);
}

}  // namespace wideserve::loadgen
