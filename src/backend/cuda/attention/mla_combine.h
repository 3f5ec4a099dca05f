// Internal to the MLA kernels: merge of split-KV partials, shared by the decode kernels (v3 in
// mla_attention.cu, v4 in mla_decode_ws.cu) so both honour one workspace layout.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace wideserve::cuda {

// o_part = workspace: [splits][rows][512] normalised fp32 partials, then [splits][rows] lse;
// writes out [rows, 512] bf16 and, when lse != nullptr, the merged natural-log lse [rows].
void launch_mla_combine(const float* o_part, int64_t rows, int splits, __nv_bfloat16* out,
                        float* lse, cudaStream_t s);

}  // namespace wideserve::cuda
