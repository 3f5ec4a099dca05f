#include "backend/cuda/common/tensor_map.h"

#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"

namespace wideserve::cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    WS_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000,
                                                   cudaEnableDefault, &q));
    WS_CUDA_ASSERT(q == cudaDriverEntryPointSuccess && p != nullptr,
                   "cuTensorMapEncodeTiled is not available from the driver");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

}  // namespace

CUtensorMap make_tensor_map_bf16_sw128(const void* base, uint64_t cols, uint64_t rows,
                                       uint64_t row_bytes, uint32_t box_cols, uint32_t box_rows) {
  WS_CUDA_REQUIRE(box_cols * 2 == 128 && box_rows >= 1 && box_rows <= 256,
                  "tensor map: a 128-byte swizzled box is 64 bf16 wide and 1..256 rows");
  WS_CUDA_REQUIRE(reinterpret_cast<uintptr_t>(base) % 16 == 0 && row_bytes % 16 == 0,
                  "tensor map: base and row pitch must be 16-byte aligned");
  CUtensorMap map{};
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r =
      encode_fn()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides,
                  box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  WS_CUDA_ASSERT(r == CUDA_SUCCESS,
                 "cuTensorMapEncodeTiled failed with CUresult " + std::to_string(r));
  return map;
}

}  // namespace wideserve::cuda
