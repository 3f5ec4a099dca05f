// FP8 grouped expert GEMM with DeepSeek block scaling (A: 1x128 per row, B: 128x128): CUTLASS SM90
// ptr-array, warp-specialized cooperative TMA + wgmma, scales applied when promoting accumulators.
#include "backend/cuda/moe/grouped_gemm_fp8_kernel.cuh"
#include "backend/cuda/moe/grouped_gemm_internal.h"

namespace wideserve::cuda {
namespace {

using namespace cute;

// A scales per row (granularity M 1), K-major ([rows][K/128]) so that an expert's rows are one
// contiguous slice; B scales [N/128][K/128] K-major (the checkpoint's weight_scale_inv).
using Kernel =
    moe_detail::Fp8GroupedKernel<Shape<_128, _128, _128>, Shape<_1, _2, _1>,
                                 cutlass::detail::Sm90BlockwiseScaleConfig<
                                     1, 128, 128, cute::GMMA::Major::K, cute::GMMA::Major::K>,
                                 cutlass::layout::RowMajor>;
using Gemm = Kernel::Gemm;
using ScaleConfig = Kernel::ScaleConfig;

}  // namespace

namespace moe_detail {
size_t grouped_fp8_workspace_bytes(int64_t num_experts) {
  return workspace_bytes<Gemm, ScaleConfig>(num_experts);
}
}  // namespace moe_detail

void launch_grouped_gemm_fp8(const GroupedGemmParams& p, cudaStream_t stream) {
  moe_detail::check_grouped_params(p, /*fp8=*/true);
  GroupedFp8Kernel kernel = p.fp8_kernel;
  if (kernel == GroupedFp8Kernel::kAuto)
    kernel = p.routed_rows > 0 && p.routed_rows <= kGroupedSwapMaxMeanRows * p.num_experts
                 ? GroupedFp8Kernel::kSwapAB
                 : GroupedFp8Kernel::kRowTiles;
  if (kernel == GroupedFp8Kernel::kRowTiles)
    moe_detail::run_grouped<Gemm, ScaleConfig>(p, stream);
  else
    moe_detail::launch_grouped_gemm_fp8_swap(p, stream);
}

}  // namespace wideserve::cuda
