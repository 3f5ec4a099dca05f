// Internal: workspace sizes of the two grouped GEMM instantiations (each in its own .cu file).
#pragma once

#include <cstddef>
#include <cstdint>

namespace wideserve::cuda::moe_detail {
size_t grouped_bf16_workspace_bytes(int64_t num_experts);
size_t grouped_fp8_workspace_bytes(int64_t num_experts);
}  // namespace wideserve::cuda::moe_detail
