// Shared helpers for GPU tests: skip without a device (CI has none), compare against float64/CPU
// references by relative L2 error, and draw fresh random inputs.
#pragma once

#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_info.h"

// First line of every GPU test: these run on the device machine, never in CI.
#define WS_REQUIRE_GPU()                                                          \
  do {                                                                            \
    if (::wideserve::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace wideserve::test {

// ||out - ref|| / ||ref||; NaN in out never passes (returns +inf).
inline double rel_l2(const std::vector<float>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size() && i < ref.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

// Host bf16 conversions: round to nearest, and back.
inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __float2bfloat16(v[i]);
  return o;
}
inline std::vector<float> from_bf16(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __bfloat162float(v[i]);
  return o;
}
// Values exactly representable in bf16 (so references see what the GPU sees).
inline std::vector<float> round_bf16(const std::vector<float>& v) {
  return from_bf16(to_bf16(v));
}

// n normal(0, scale) floats from a fresh seed per call site.
inline std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// A stream capture of `work`, instantiated: launch() replays it on the stream and waits; the graph
// goes with the object.
class CapturedGraph {
 public:
  CapturedGraph(cudaStream_t stream, const std::function<void()>& work,
                cudaStreamCaptureMode mode = cudaStreamCaptureModeThreadLocal)
      : stream_(stream) {
    WS_CUDA_CHECK(cudaStreamBeginCapture(stream, mode));
    work();
    WS_CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
    WS_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  ~CapturedGraph() {
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  void launch() {
    WS_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
    WS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  cudaStream_t stream_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace wideserve::test
