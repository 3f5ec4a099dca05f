// Programmatic dependent launch (PDL, sm_90): a kernel launched with launch_pdl may start while
// the kernel before it in the stream is still finishing, so its launch and any prologue that reads
// only constant data (weights) overlap that kernel's tail. Every such kernel must call pdl_wait()
// in every CTA before it reads or writes memory an earlier kernel touches (and before any early
// return: a grid that never waits could complete before its predecessor, breaking the ordering
// later kernels rely on). Kernels not launched with the attribute see pdl_wait() as a no-op.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/common/cuda_check.h"

namespace wideserve::cuda {

// Process-wide switch (default on): off launches every kernel with plain stream order.
bool pdl_enabled();
void set_pdl_enabled(bool on);

// Blocks until every prerequisite grid has completed and its memory is visible.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next PDL kernel in the stream launch now (it still waits in pdl_wait for our end).
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// launch_pdl with thread block clusters of cluster_x CTAs along x (0: no clusters).
template <typename... KArgs, typename... Args>
void launch_pdl_clusters(void (*kernel)(KArgs...), dim3 grid, dim3 block, unsigned cluster_x,
                         size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (pdl_enabled()) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster_x > 0) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n++].val.clusterDim = {cluster_x, 1, 1};
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  WS_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...));
}

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute when pdl_enabled().
template <typename... KArgs, typename... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                Args&&... args) {
  launch_pdl_clusters(kernel, grid, block, 0, smem, stream, std::forward<Args>(args)...);
}

}  // namespace wideserve::cuda
