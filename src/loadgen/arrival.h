// Request arrival times: gamma-distributed gaps with a given mean rate, as SGLang/vLLM
// bench_serving do. burstiness 1 is a Poisson process; < 1 is burstier, > 1 more regular.
#pragma once

#include <cstdint>
#include <random>

namespace wideserve::loadgen {

class ArrivalProcess {
 public:
  // rate: requests per second (<= 0 or infinite: every gap is 0); burstiness: gamma shape (> 0).
  ArrivalProcess(double rate, double burstiness, uint64_t seed);

  // Seconds until the next request.
  double next_gap_s();

 private:
  bool unlimited_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gamma_;
};

}  // namespace wideserve::loadgen
