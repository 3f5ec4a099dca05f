// kernel_trace_stamp (kernel_trace.h): compiled with WS_KERNEL_TRACE only in trace builds.
#include "backend/cuda/common/kernel_trace.cuh"

namespace wideserve::cuda {
namespace {

#if defined(WS_KERNEL_TRACE)
__global__ void trace_stamp_kernel() {
  KernelTrace kt_(TraceKernel::kStamp);
}
#endif

}  // namespace

void kernel_trace_stamp(cudaStream_t stream, unsigned tag) {
#if defined(WS_KERNEL_TRACE)
  WS_CUDA_REQUIRE(tag >= 1 && tag <= 65535, "kernel trace stamp: tag " + std::to_string(tag));
  trace_stamp_kernel<<<dim3(1, tag), 32, 0, stream>>>();
  WS_CUDA_CHECK_LAUNCH();
#else
  (void)stream;
  (void)tag;
#endif
}

}  // namespace wideserve::cuda
