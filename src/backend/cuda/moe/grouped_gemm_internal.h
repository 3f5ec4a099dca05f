// Internal: workspace sizes of the grouped GEMM instantiations (each in its own .cu file) and the
// swapped-operand FP8 launch that launch_grouped_gemm_fp8 picks for decode-sized groups.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace wideserve::cuda {
struct GroupedGemmParams;
}

namespace wideserve::cuda::moe_detail {
size_t grouped_bf16_workspace_bytes(int64_t num_experts);
size_t grouped_fp8_workspace_bytes(int64_t num_experts);
size_t grouped_fp8_swap_workspace_bytes(int64_t num_experts);
// D^T = W X^T per expert, each expert's rows as 32-wide N tiles; shapes already checked.
void launch_grouped_gemm_fp8_swap(const GroupedGemmParams& p, cudaStream_t stream);
}  // namespace wideserve::cuda::moe_detail
