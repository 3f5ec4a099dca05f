// Shared driver of the CUTLASS SM90 ptr-array grouped GEMMs (one group per local expert). The
// per-expert arguments (problem shapes, pointers, strides, FP8 scale layouts) are written by a tiny
// device kernel from the device-side expert offsets, so no host synchronisation is needed and the
// launch can be captured in a CUDA graph. Included only by grouped_gemm_{bf16,fp8}.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/moe/moe.h"
#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/group_array_problem_shape.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"

namespace wideserve::cuda::moe_detail {

using GroupShape = cutlass::gemm::GroupProblemShape<cute::Shape<int, int, int>>;

inline size_t align_up(size_t x) {
  return (x + 255) / 256 * 256;
}

// Device scratch of one grouped launch, carved from the caller's workspace.
template <class Gemm, class ScaleConfig>
struct GroupArrays {
  using Kernel = typename Gemm::GemmKernel;
  using Shape3 = typename GroupShape::UnderlyingProblemShape;
  using ElementA = typename Gemm::ElementA;
  using ElementB = typename Gemm::ElementB;
  using ElementD = typename Gemm::ElementD;
  using StrideA = typename Kernel::InternalStrideA;
  using StrideB = typename Kernel::InternalStrideB;
  using StrideD = typename Kernel::InternalStrideD;
  static constexpr bool kScaled = !std::is_same_v<ScaleConfig, void>;

  Shape3* shapes;
  const ElementA** a;
  const ElementB** b;
  ElementD** d;
  StrideA* sa;
  StrideB* sb;
  StrideD* sd;
  const float** sfa;
  const float** sfb;
  void* layout_sfa;  // LayoutSFA[E] (FP8 only)
  void* layout_sfb;
  void* cutlass_ws;

  // Bytes of the per-group arrays for E groups (excluding CUTLASS's own workspace).
  static size_t array_bytes(int64_t e, size_t layout_a_size, size_t layout_b_size) {
    return align_up(e * sizeof(Shape3)) + 3 * align_up(e * sizeof(void*)) +
           align_up(e * sizeof(StrideA)) + align_up(e * sizeof(StrideB)) +
           align_up(e * sizeof(StrideD)) + 2 * align_up(e * sizeof(void*)) +
           align_up(e * layout_a_size) + align_up(e * layout_b_size);
  }
  static GroupArrays carve(void* ws, int64_t e, size_t layout_a_size, size_t layout_b_size) {
    char* p = static_cast<char*>(ws);
    auto take = [&](size_t bytes) {
      char* r = p;
      p += align_up(bytes);
      return static_cast<void*>(r);
    };
    GroupArrays g;
    g.shapes = static_cast<Shape3*>(take(e * sizeof(Shape3)));
    g.a = static_cast<const ElementA**>(take(e * sizeof(void*)));
    g.b = static_cast<const ElementB**>(take(e * sizeof(void*)));
    g.d = static_cast<ElementD**>(take(e * sizeof(void*)));
    g.sa = static_cast<StrideA*>(take(e * sizeof(StrideA)));
    g.sb = static_cast<StrideB*>(take(e * sizeof(StrideB)));
    g.sd = static_cast<StrideD*>(take(e * sizeof(StrideD)));
    g.sfa = static_cast<const float**>(take(e * sizeof(void*)));
    g.sfb = static_cast<const float**>(take(e * sizeof(void*)));
    g.layout_sfa = take(e * layout_a_size);
    g.layout_sfb = take(e * layout_b_size);
    g.cutlass_ws = p;
    return g;
  }
};

// Leading stride ld of a 2-D operand: mode 1 when mode 0 is the unit stride (a column-major D),
// else mode 0 (K- or N-contiguous operands).
template <class Stride>
__device__ __forceinline__ Stride leading_stride(int64_t ld) {
  Stride s{};
  if constexpr (cute::is_static_v<cute::remove_cvref_t<decltype(cute::get<0>(s))>>)
    cute::get<1>(s) = ld;
  else
    cute::get<0>(s) = ld;
  return s;
}

// One thread per expert: shapes, pointers, strides and (FP8) scale layouts from the offsets.
// kSwapAB: the problem is D^T = B[e] A^T (weights as the M operand, the expert's rows as N), so
// that a few rows per expert fill a narrow N tile instead of 1/16 of a 128-row M tile.
template <class Arrays, class ScaleConfig, bool kSwapAB = false>
__global__ void build_group_args(Arrays g, const int32_t* offsets, const void* a, const void* b,
                                 void* d, const float* a_scales, const float* b_scales, int e_count,
                                 int n, int k) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= e_count) return;
  const int off = offsets[e];
  const int m = offsets[e + 1] - off;
  using ElemA = typename Arrays::ElementA;
  using ElemB = typename Arrays::ElementB;
  using ElemRows = std::conditional_t<kSwapAB, ElemB, ElemA>;
  using ElemWeights = std::conditional_t<kSwapAB, ElemA, ElemB>;
  const void* rows = static_cast<const ElemRows*>(a) + int64_t(off) * k;
  const void* weights = static_cast<const ElemWeights*>(b) + int64_t(e) * n * k;
  const int gm = kSwapAB ? n : m, gn = kSwapAB ? m : n;
  g.shapes[e] = cute::make_shape(gm, gn, k);
  g.a[e] = static_cast<const ElemA*>(kSwapAB ? weights : rows);
  g.b[e] = static_cast<const ElemB*>(kSwapAB ? rows : weights);
  g.d[e] = static_cast<typename Arrays::ElementD*>(d) + int64_t(off) * n;
  g.sa[e] = leading_stride<typename Arrays::StrideA>(k);
  g.sb[e] = leading_stride<typename Arrays::StrideB>(k);
  g.sd[e] = leading_stride<typename Arrays::StrideD>(n);  // row-major [m][n] either way
  if constexpr (!std::is_same_v<ScaleConfig, void>) {
    const int kb = k / 128, nb = n / 128;
    const float* row_scales = a_scales + int64_t(off) * kb;  // [rows][K/128]: groups contiguous
    const float* weight_scales = b_scales + int64_t(e) * nb * kb;
    g.sfa[e] = kSwapAB ? weight_scales : row_scales;
    g.sfb[e] = kSwapAB ? row_scales : weight_scales;
    using LayoutSFA = decltype(ScaleConfig::deduce_layoutSFA());
    using LayoutSFB = decltype(ScaleConfig::deduce_layoutSFB());
    static_cast<LayoutSFA*>(g.layout_sfa)[e] =
        ScaleConfig::tile_atom_to_shape_SFA(cute::make_shape(gm, gn, k, 1));
    static_cast<LayoutSFB*>(g.layout_sfb)[e] =
        ScaleConfig::tile_atom_to_shape_SFB(cute::make_shape(gm, gn, k, 1));
  }
}

// SM count of the current device, cached per device (CUTLASS's persistent grid size).
inline cutlass::KernelHardwareInfo hw_info() {
  static thread_local int cached_dev = -1, cached_sms = 0;
  int dev = 0;
  WS_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev != cached_dev) {
    WS_CUDA_CHECK(cudaDeviceGetAttribute(&cached_sms, cudaDevAttrMultiProcessorCount, dev));
    cached_dev = dev;
  }
  cutlass::KernelHardwareInfo info;
  info.device_id = dev;
  info.sm_count = cached_sms;
  return info;
}

inline void check_cutlass(cutlass::Status st, const char* what) {
  WS_CUDA_ASSERT(st == cutlass::Status::kSuccess,
                 std::string(what) + ": " + cutlassGetStatusString(st));
}

// Builds CUTLASS arguments for the group arrays (problem shapes only on the device).
template <class Gemm, class ScaleConfig>
typename Gemm::Arguments make_arguments(const GroupArrays<Gemm, ScaleConfig>& g, int groups) {
  typename Gemm::Arguments args;
  args.mode = cutlass::gemm::GemmUniversalMode::kGrouped;
  args.problem_shape = {groups, g.shapes, nullptr};
  if constexpr (std::is_same_v<ScaleConfig, void>) {
    args.mainloop = {g.a, g.sa, g.b, g.sb};
  } else {
    using LayoutSFA = decltype(ScaleConfig::deduce_layoutSFA());
    using LayoutSFB = decltype(ScaleConfig::deduce_layoutSFB());
    args.mainloop = {g.a,   g.sa,
                     g.b,   g.sb,
                     g.sfa, static_cast<LayoutSFA*>(g.layout_sfa),
                     g.sfb, static_cast<LayoutSFB*>(g.layout_sfb)};
  }
  args.epilogue.ptr_C = nullptr;
  args.epilogue.dC = nullptr;
  args.epilogue.ptr_D = g.d;
  args.epilogue.dD = g.sd;
  auto& fusion = args.epilogue.thread;
  fusion.alpha = 1.0f;
  fusion.beta = 0.0f;
  fusion.alpha_ptr = nullptr;
  fusion.beta_ptr = nullptr;
  fusion.alpha_ptr_array = nullptr;
  fusion.beta_ptr_array = nullptr;
  fusion.dAlpha = {cute::_0{}, cute::_0{}, 0};
  fusion.dBeta = {cute::_0{}, cute::_0{}, 0};
  args.hw_info = hw_info();
  return args;
}

template <class Gemm, class ScaleConfig>
size_t layout_a_size() {
  if constexpr (std::is_same_v<ScaleConfig, void>) {
    return 0;
  } else {
    return sizeof(decltype(ScaleConfig::deduce_layoutSFA()));
  }
}
template <class Gemm, class ScaleConfig>
size_t layout_b_size() {
  if constexpr (std::is_same_v<ScaleConfig, void>) {
    return 0;
  } else {
    return sizeof(decltype(ScaleConfig::deduce_layoutSFB()));
  }
}

// Workspace bytes of one instantiation for E groups.
template <class Gemm, class ScaleConfig>
size_t workspace_bytes(int64_t e) {
  using Arrays = GroupArrays<Gemm, ScaleConfig>;
  const size_t la = layout_a_size<Gemm, ScaleConfig>(), lb = layout_b_size<Gemm, ScaleConfig>();
  Arrays g = Arrays::carve(nullptr, e, la, lb);
  auto args = make_arguments<Gemm, ScaleConfig>(g, static_cast<int>(e));
  return Arrays::array_bytes(e, la, lb) + align_up(Gemm::get_workspace_size(args));
}

template <class Gemm, class ScaleConfig, bool kSwapAB = false>
void run_grouped(const GroupedGemmParams& p, cudaStream_t stream) {
  using Arrays = GroupArrays<Gemm, ScaleConfig>;
  const int e = static_cast<int>(p.num_experts);
  const size_t la = layout_a_size<Gemm, ScaleConfig>(), lb = layout_b_size<Gemm, ScaleConfig>();
  Arrays g = Arrays::carve(p.workspace, e, la, lb);
  build_group_args<Arrays, ScaleConfig, kSwapAB><<<(e + 127) / 128, 128, 0, stream>>>(
      g, p.expert_offsets, p.a, p.b, p.d, p.a_scales, p.b_scales, e, static_cast<int>(p.n),
      static_cast<int>(p.k));
  WS_CUDA_CHECK_LAUNCH();
  auto args = make_arguments<Gemm, ScaleConfig>(g, e);
  Gemm gemm;
  check_cutlass(gemm.can_implement(args), "grouped gemm can_implement");
  check_cutlass(gemm.initialize(args, g.cutlass_ws, stream), "grouped gemm initialize");
  check_cutlass(gemm.run(stream, nullptr, /*launch_with_pdl=*/false), "grouped gemm run");
  WS_CUDA_CHECK_LAUNCH();
}

// Shape checks shared by both paths.
inline void check_grouped_params(const GroupedGemmParams& p, bool fp8) {
  WS_CUDA_REQUIRE(p.num_experts > 0 && p.num_experts < (1 << 20),
                  "grouped gemm: num_experts " + std::to_string(p.num_experts));
  WS_CUDA_REQUIRE(p.n > 0 && p.k > 0 && p.n % 8 == 0 && p.k % 8 == 0,
                  "grouped gemm: N, K must be positive multiples of 8 (N " + std::to_string(p.n) +
                      ", K " + std::to_string(p.k) + ")");
  WS_CUDA_REQUIRE(!fp8 || (p.n % 128 == 0 && p.k % 128 == 0),
                  "grouped gemm fp8: N, K must be multiples of 128 (N " + std::to_string(p.n) +
                      ", K " + std::to_string(p.k) + ")");
  WS_CUDA_REQUIRE(p.a && p.b && p.d && p.expert_offsets && p.workspace,
                  "grouped gemm: null pointer argument");
  WS_CUDA_REQUIRE(!fp8 || (p.a_scales && p.b_scales), "grouped gemm fp8: null scales");
}

}  // namespace wideserve::cuda::moe_detail
