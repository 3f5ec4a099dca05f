// A kernel's dynamic shared-memory limit raised once per device: cudaFuncSetAttribute is no
// stream work, but it stays out of graph captures and of every launch after the first.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <initializer_list>

#include "backend/cuda/common/cuda_check.h"

namespace wideserve::cuda {

// One static instance per launch site. Devices 64 and up are configured on every call.
class SmemOptIn {
 public:
  // Runs configure() (attribute calls) the first time the current device is seen.
  template <class F>
  void once(F&& configure) {
    int device = 0;
    WS_CUDA_CHECK(cudaGetDevice(&device));
    const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
    if (bit != 0 && (done_.load(std::memory_order_acquire) & bit) != 0) return;
    configure();
    done_.fetch_or(bit, std::memory_order_acq_rel);
  }
  // The first call on each device raises every kernel's dynamic shared-memory limit to bytes.
  void raise(std::initializer_list<const void*> kernels, int bytes) {
    once([&] {
      for (const void* k : kernels)
        WS_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    });
  }

 private:
  std::atomic<uint64_t> done_{0};
};

}  // namespace wideserve::cuda
