// TMA tensor maps (sm_90): the host-side description a cp.async.bulk.tensor copy reads its tiles
// through. Encoded with the driver's cuTensorMapEncodeTiled, reached through the runtime's entry
// point query, so nothing links libcuda.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace wideserve::cuda {

// A 2-D bf16 tensor of `rows` rows of `cols` elements, `row_bytes` apart, read in boxes of
// box_cols x box_rows with the 128-byte swizzle wgmma's K-major operands use (box_cols * 2 must
// be 128). Elements outside the tensor read as zero. Throws on a shape the driver rejects.
CUtensorMap make_tensor_map_bf16_sw128(const void* base, uint64_t cols, uint64_t rows,
                                       uint64_t row_bytes, uint32_t box_cols, uint32_t box_rows);

}  // namespace wideserve::cuda
