// Device side of kernel_trace.h, compiled in with -DWS_KERNEL_TRACE=ON (CMake sets the macro on
// the files that include this). Each such translation unit has its own constant copy of the trace
// state (no relocatable device code), bound by kernel_trace_start.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.h"
#include "backend/cuda/common/pdl.cuh"

namespace wideserve::cuda {

namespace {

#if defined(WS_KERNEL_TRACE)
__constant__ KernelTraceState c_kernel_trace;

struct KernelTraceBinder {
  KernelTraceBinder() {
    kernel_trace_register([](const void* state, size_t bytes) {
      WS_CUDA_CHECK(cudaMemcpyToSymbol(c_kernel_trace, state, bytes));
    });
  }
};
[[maybe_unused]] const KernelTraceBinder kernel_trace_binder;

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// One CTA's stamps, kept by thread 0; the record is written when the object leaves scope (every
// return path). Other threads do nothing.
class KernelTrace {
 public:
  __device__ __forceinline__ explicit KernelTrace(TraceKernel k)
      : on_(threadIdx.x == 0), kernel_(k) {
    if (on_) start_ = global_ns();
  }
  // pdl_wait() with its return stamped.
  __device__ __forceinline__ void wait() {
    pdl_wait();
    if (on_) wait_ = global_ns();
  }
  __device__ __forceinline__ ~KernelTrace() {
    if (!on_) return;
    const uint64_t end = global_ns();
    // The switch is read last: a constant-cache miss at entry delayed every stamp after it.
    if (c_kernel_trace.records == nullptr) return;
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    const unsigned i = atomicAdd(c_kernel_trace.counts + sm, 1u);
    if (i >= c_kernel_trace.per_sm) return;
    KernelTraceRecord& r = c_kernel_trace.records[sm * c_kernel_trace.per_sm + i];
    r.kernel = static_cast<uint32_t>(kernel_);
    r.grid = gridDim.x | (gridDim.y << 16);
    r.start = start_;
    r.wait = wait_;
    r.end = end;
  }

 private:
  bool on_;
  TraceKernel kernel_;
  uint64_t start_ = 0, wait_ = 0;
};

#else
// Built without WS_KERNEL_TRACE (the default): nothing but the wait. A runtime switch was
// measured instead and cost ~90 us per V2-Lite decode step (one constant-cache miss per CTA on
// the critical path of each launch).
class KernelTrace {
 public:
  __device__ __forceinline__ explicit KernelTrace(TraceKernel) {}
  __device__ __forceinline__ void wait() { pdl_wait(); }
};
#endif

}  // namespace
}  // namespace wideserve::cuda
