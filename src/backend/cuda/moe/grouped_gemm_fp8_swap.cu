// FP8 grouped expert GEMM for decode-sized groups, operands swapped: each expert computes
// D^T[N, rows] = W[N, K] X[rows, K]^T, so the weights fill the 128-row M tile and the expert's few
// rows a narrow N tile. The row-tiled kernel (grouped_gemm_fp8.cu) pads ~8 rows to 128 and spends
// 16x the tensor work, which competes with the weight stream that bounds the launch. Same scales:
// W 128x128 blocks (now on the M operand), X 1x128 per row (now on the N operand).
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

// A 32-wide N tile: as fast as 16 at <= 8 rows per expert, and at 16 (half the experts needing
// two 16-row tiles, each re-reading the weights) 1.3x faster (docs/cuda_moe.md).
struct SwapKernel {
  using TileShape = Shape<_128, _32, _128>;
  using ClusterShape = Shape<_1, _1, _1>;
  // SFA: the weights' [N/128][K/128] blocks; SFB: the rows' [rows][K/128] (both K-major).
  using ScaleConfig = cutlass::detail::Sm90BlockwiseScaleConfig<128, 1, 128, cute::GMMA::Major::K,
                                                                cute::GMMA::Major::K>;
  using LayoutSFA = decltype(ScaleConfig::deduce_layoutSFA());
  using LayoutSFB = decltype(ScaleConfig::deduce_layoutSFB());
  using KernelSchedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperativeFP8Blockwise;
  using EpilogueSchedule = cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative;

  // D^T column-major with leading dimension N is D row-major [rows][N].
  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, void,
      cutlass::layout::ColumnMajor*, kAlignD, ElementD, cutlass::layout::ColumnMajor*, kAlignD,
      EpilogueSchedule,
      cutlass::epilogue::fusion::LinearCombination<ElementD, float>>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB,
      cute::tuple<cutlass::layout::RowMajor*, LayoutSFA*>, kAlignAB, ElementAB,
      cute::tuple<cutlass::layout::ColumnMajor*, LayoutSFB*>, kAlignAB, float, TileShape,
      ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      KernelSchedule>::CollectiveOp;

  using GemmKernel = cutlass::gemm::kernel::GemmUniversal<moe_detail::GroupShape,
                                                          CollectiveMainloop, CollectiveEpilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;
};

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
