// FP8 grouped expert GEMM for decode-sized groups, operands swapped: each expert computes
// D^T[N, rows] = W[N, K] X[rows, K]^T, so the weights fill the 128-row M tile and the expert's few
// rows a narrow N tile. The row-tiled kernel (grouped_gemm_fp8.cu) pads ~8 rows to 128 and spends
// 16x the tensor work, which competes with the weight stream that bounds the launch. Same scales:
// W 128x128 blocks (now on the M operand), X 1x128 per row (now on the N operand).
#include "backend/cuda/moe/grouped_gemm_fp8_kernel.cuh"
#include "backend/cuda/moe/grouped_gemm_internal.h"

namespace wideserve::cuda {
namespace {

using namespace cute;

// A 32-wide N tile: as fast as 16 at <= 8 rows per expert, and at 16 (half the experts needing
// two 16-row tiles, each re-reading the weights) 1.3x faster (docs/cuda_moe.md). SFA: the
// weights' [N/128][K/128] blocks; SFB: the rows' [rows][K/128] (both K-major). D^T column-major
// with leading dimension N is D row-major [rows][N].
using SwapKernel =
    moe_detail::Fp8GroupedKernel<Shape<_128, _32, _128>, Shape<_1, _1, _1>,
                                 cutlass::detail::Sm90BlockwiseScaleConfig<
                                     128, 1, 128, cute::GMMA::Major::K, cute::GMMA::Major::K>,
                                 cutlass::layout::ColumnMajor>;

}  // namespace

namespace moe_detail {
size_t grouped_fp8_swap_workspace_bytes(int64_t num_experts) {
  return workspace_bytes<SwapKernel::Gemm, SwapKernel::ScaleConfig>(num_experts);
}

void launch_grouped_gemm_fp8_swap(const GroupedGemmParams& p, cudaStream_t stream) {
  run_grouped<SwapKernel::Gemm, SwapKernel::ScaleConfig, true>(p, stream);
}
}  // namespace moe_detail

}  // namespace wideserve::cuda
