// BF16 grouped expert GEMM: CUTLASS SM90 ptr-array, warp-specialized cooperative TMA + wgmma.
#include "backend/cuda/moe/grouped_gemm_cutlass.cuh"
#include "backend/cuda/moe/grouped_gemm_internal.h"

namespace wideserve::cuda {
namespace {

using namespace cute;

using ElementAB = cutlass::bfloat16_t;
using ElementD = cutlass::bfloat16_t;
constexpr int kAlign = 8;  // 16 bytes of bf16
using TileShape = Shape<_128, _128, _64>;
using ClusterShape = Shape<_1, _2, _1>;
using KernelSchedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperative;
using EpilogueSchedule = cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative;

using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
    cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
    cutlass::epilogue::collective::EpilogueTileAuto, float, float, void, cutlass::layout::RowMajor*,
    kAlign, ElementD, cutlass::layout::RowMajor*, kAlign, EpilogueSchedule,
    cutlass::epilogue::fusion::LinearCombination<ElementD, float>>::CollectiveOp;

using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
    cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB, cutlass::layout::RowMajor*,
    kAlign, ElementAB, cutlass::layout::ColumnMajor*, kAlign, float, TileShape, ClusterShape,
    cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
        sizeof(typename CollectiveEpilogue::SharedStorage))>,
    KernelSchedule>::CollectiveOp;

using GemmKernel = cutlass::gemm::kernel::GemmUniversal<moe_detail::GroupShape, CollectiveMainloop,
                                                        CollectiveEpilogue>;
using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;

}  // namespace

namespace moe_detail {
size_t grouped_bf16_workspace_bytes(int64_t num_experts) {
  return workspace_bytes<Gemm, void>(num_experts);
}
}  // namespace moe_detail

void launch_grouped_gemm_bf16(const GroupedGemmParams& p, cudaStream_t stream) {
  moe_detail::check_grouped_params(p, /*fp8=*/false);
  moe_detail::run_grouped<Gemm, void>(p, stream);
}

}  // namespace wideserve::cuda
