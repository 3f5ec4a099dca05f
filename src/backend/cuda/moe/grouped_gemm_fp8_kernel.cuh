// The CUTLASS SM90 FP8 grouped GEMM both FP8 instantiations use (grouped_gemm_fp8.cu: 128-row tiles
// over each expert's rows; grouped_gemm_fp8_swap.cu: the weights as the M operand): ptr-array,
// warp-specialized cooperative TMA + wgmma, e4m3 A and B K-major, fp32 accumulation with the block
// scales applied when promoting accumulators, bf16 D. Included only by those two files.
#pragma once

#include "backend/cuda/moe/grouped_gemm_cutlass.cuh"
#include "cutlass/detail/blockwise_scale_layout.hpp"

namespace wideserve::cuda::moe_detail {

// One instantiation: CTA tile, cluster, scale granularities (Sm90BlockwiseScaleConfig) and D's
// layout (RowMajor: D[rows][N]; ColumnMajor: D^T of the swapped problem, the same bytes).
template <class TileShape, class ClusterShape, class ScaleConfigT, class LayoutD>
struct Fp8GroupedKernel {
  using ScaleConfig = ScaleConfigT;
  using ElementAB = cutlass::float_e4m3_t;
  using ElementD = cutlass::bfloat16_t;
  static constexpr int kAlignAB = 16;  // 16 bytes of e4m3
  static constexpr int kAlignD = 8;
  using LayoutSFA = decltype(ScaleConfig::deduce_layoutSFA());
  using LayoutSFB = decltype(ScaleConfig::deduce_layoutSFB());
  using KernelSchedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperativeFP8Blockwise;
  using EpilogueSchedule = cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative;

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, void, LayoutD*, kAlignD,
      ElementD, LayoutD*, kAlignD, EpilogueSchedule,
      cutlass::epilogue::fusion::LinearCombination<ElementD, float>>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB,
      cute::tuple<cutlass::layout::RowMajor*, LayoutSFA*>, kAlignAB, ElementAB,
      cute::tuple<cutlass::layout::ColumnMajor*, LayoutSFB*>, kAlignAB, float, TileShape,
      ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      KernelSchedule>::CollectiveOp;

  using GemmKernel =
      cutlass::gemm::kernel::GemmUniversal<GroupShape, CollectiveMainloop, CollectiveEpilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;
};

}  // namespace wideserve::cuda::moe_detail
