// TMA (sm_90 tensor memory accelerator) copies: a tile of a 2-D tensor map (common/tensor_map.h)
// or a contiguous span into shared memory, completing on an mbarrier's transaction count
// (mbar_expect_tx). Device-only; include from .cu files built for sm_90a.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace wideserve::cuda {

// The box of `map` at element (x, y) into shared address dst (1024-byte aligned for the 128-byte
// swizzle); its bytes count on barrier `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int x, int y,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}
// `bytes` contiguous global bytes (16-byte aligned, a multiple of 16) into shared address dst;
// they count on barrier `bar`.
__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes,
                                          uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}
// Pulls the tensor map's descriptor into the TMA unit's cache ahead of the first copy.
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

}  // namespace wideserve::cuda
