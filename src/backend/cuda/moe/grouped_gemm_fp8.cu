// FP8 grouped expert GEMM with DeepSeek block scaling (A: 1x128 per row, B: 128x128): CUTLASS SM90
// ptr-array, warp-specialized cooperative TMA + wgmma, scales applied when promoting accumulators.
#include "backend/cuda/moe/grouped_gemm_cutlass.cuh"
#include "backend/cuda/moe/grouped_gemm_internal.h"
#include "cutlass/detail/blockwise_scale_layout.hpp"

namespace wideserve::cuda {
namespace {

using namespace cute;

using ElementAB = cutlass::float_e4m3_t;
using ElementD = cutlass::bfloat16_t;
constexpr int kAlignAB = 16;  // 16 bytes of e4m3
constexpr int kAlignD = 8;
using TileShape = Shape<_128, _128, _128>;
using ClusterShape = Shape<_1, _2, _1>;
// A scales per row (granularity M 1), K-major ([rows][K/128]) so that an expert's rows are one
// contiguous slice; B scales [N/128][K/128] K-major (the checkpoint's weight_scale_inv).
using ScaleConfig = cutlass::detail::Sm90BlockwiseScaleConfig<1, 128, 128, cute::GMMA::Major::K,
                                                              cute::GMMA::Major::K>;
using LayoutSFA = decltype(ScaleConfig::deduce_layoutSFA());
using LayoutSFB = decltype(ScaleConfig::deduce_layoutSFB());
using KernelSchedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperativeFP8Blockwise;
using EpilogueSchedule = cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative;

using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
    cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
    cutlass::epilogue::collective::EpilogueTileAuto, float, float, void, cutlass::layout::RowMajor*,
    kAlignD, ElementD, cutlass::layout::RowMajor*, kAlignD, EpilogueSchedule,
    cutlass::epilogue::fusion::LinearCombination<ElementD, float>>::CollectiveOp;

using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
    cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB,
    cute::tuple<cutlass::layout::RowMajor*, LayoutSFA*>, kAlignAB, ElementAB,
    cute::tuple<cutlass::layout::ColumnMajor*, LayoutSFB*>, kAlignAB, float, TileShape,
    ClusterShape,
    cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
        sizeof(typename CollectiveEpilogue::SharedStorage))>,
    KernelSchedule>::CollectiveOp;

using GemmKernel = cutlass::gemm::kernel::GemmUniversal<moe_detail::GroupShape, CollectiveMainloop,
                                                        CollectiveEpilogue>;
using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;

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
