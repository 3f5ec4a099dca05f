// Workspace query shared by the BF16 and FP8 grouped GEMMs (both FP8 kernels).
#include <algorithm>

#include "backend/cuda/moe/grouped_gemm_internal.h"
#include "backend/cuda/moe/moe.h"

namespace wideserve::cuda {

size_t grouped_gemm_workspace_bytes(int64_t num_experts) {
  return std::max({moe_detail::grouped_bf16_workspace_bytes(num_experts),
                   moe_detail::grouped_fp8_workspace_bytes(num_experts),
                   moe_detail::grouped_fp8_swap_workspace_bytes(num_experts)});
}

}  // namespace wideserve::cuda
