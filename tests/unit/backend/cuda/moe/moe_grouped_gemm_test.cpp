// Grouped expert GEMMs (BF16 and FP8 block-scaled) against a float64 reference on dequantized
// inputs; groups of very different sizes, including empty experts, and device-side offsets only.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_ref.h"
#include "moe_test_util.h"

namespace wideserve::test {
namespace {

// Row counts per expert: random in [0, max_rows_per], some experts empty.
std::vector<int32_t> random_offsets(int64_t E, int max_per, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> off(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) {
    const int n = (g() % 5 == 0) ? 0 : static_cast<int>(g() % (max_per + 1));
    off[e + 1] = off[e] + n;
  }
  return off;
}

struct Shape {
  int64_t E, N, K;
  int max_per;
};

void run_case(const Shape& s, bool fp8, uint64_t seed,
              cuda::GroupedFp8Kernel kernel = cuda::GroupedFp8Kernel::kAuto,
              bool give_routed_rows = false) {
  const auto off = random_offsets(s.E, s.max_per, seed);
  const int64_t R = off[s.E], max_rows = R + 17;  // buffer larger than the valid rows
  const auto a = round_bf16(randn(max_rows * s.K, seed + 1));
  const auto b = round_bf16(randn(s.E * s.N * s.K, seed + 2, 0.05f));
  auto d_off = upload(off);
  auto d_d = poisoned<__nv_bfloat16>(max_rows * s.N);
  cuda::DeviceBuffer<char> ws(cuda::grouped_gemm_workspace_bytes(s.E));
  cuda::GroupedGemmParams p;
  p.d = d_d.get();
  p.expert_offsets = d_off.get();
  p.num_experts = s.E;
  p.n = s.N;
  p.k = s.K;
  p.max_rows = max_rows;
  p.workspace = ws.get();
  p.fp8_kernel = kernel;
  if (give_routed_rows) p.routed_rows = R;
  std::vector<double> ref;
  cuda::DeviceBuffer<__nv_bfloat16> d_a16, d_b16;
  cuda::DeviceBuffer<__nv_fp8_e4m3> d_a8, d_b8;
  cuda::DeviceBuffer<float> d_sa, d_sb;
  if (fp8) {
    const auto qa = quantize_rows(a, max_rows, s.K);
    const auto qb = quantize_blocks(b, s.E, s.N, s.K);
    d_a8 = upload(qa.q);
    d_b8 = upload(qb.q);
    d_sa = upload(qa.scale);
    d_sb = upload(qb.scale);
    p.a = d_a8.get();
    p.b = d_b8.get();
    p.a_scales = d_sa.get();
    p.b_scales = d_sb.get();
    cuda::launch_grouped_gemm_fp8(p, nullptr);
    ref = cuda::ref::grouped_gemm(qa.dequant, qb.dequant, off, s.N, s.K);
  } else {
    d_a16 = upload(to_bf16(a));
    d_b16 = upload(to_bf16(b));
    p.a = d_a16.get();
    p.b = d_b16.get();
    p.a_scales = p.b_scales = nullptr;
    cuda::launch_grouped_gemm_bf16(p, nullptr);
    ref = cuda::ref::grouped_gemm(a, b, off, s.N, s.K);
  }
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  auto out = from_bf16(d_d.download());
  // Rows past the valid ones are not written.
  EXPECT_TRUE(std::isnan(out[R * s.N])) << "row past the groups written";
  out.resize(R * s.N);
  const double err = rel_l2(out, ref);
  std::printf("[grouped %s kernel %d] E=%ld N=%ld K=%ld rows=%ld rel_l2=%.2e\n",
              fp8 ? "fp8" : "bf16", static_cast<int>(kernel), long(s.E), long(s.N), long(s.K),
              long(R), err);
  EXPECT_LT(err, 1e-2) << (fp8 ? "fp8" : "bf16") << " E=" << s.E << " N=" << s.N << " K=" << s.K;
}

TEST(CudaMoeGroupedGemm, Bf16MatchesReference) {
  WS_REQUIRE_GPU();
  run_case({8, 256, 512, 200}, false, 10);
  run_case({16, 2816, 2048, 24}, false, 11);  // V2-Lite gate_up dims
  run_case({16, 2048, 1408, 24}, false, 12);  // V2-Lite down dims
  run_case({5, 136, 72, 300}, false, 13);     // odd sizes (multiples of 8)
  run_case({1, 128, 128, 1}, false, 14);
}

TEST(CudaMoeGroupedGemm, Fp8BlockScaledMatchesReference) {
  WS_REQUIRE_GPU();
  run_case({8, 256, 512, 200}, true, 20);
  run_case({16, 512, 7168, 40}, true, 21);   // V3 gate_up K (N cut to keep the ref cheap)
  run_case({8, 7168, 2048, 12}, true, 22);   // V3 down dims
  run_case({16, 2816, 2048, 24}, true, 23);  // V2-Lite gate_up dims
  run_case({3, 384, 384, 500}, true, 24);    // K = 384 (cuBLASLt gets this one wrong)
}

// Weights as the M operand, each expert's rows as a 32-wide N tile: groups of 0 rows, of fewer
// rows than the tile, and of several tiles (up to 70 rows).
TEST(CudaMoeGroupedGemm, Fp8SwappedOperandsMatchReference) {
  WS_REQUIRE_GPU();
  const auto kernel = cuda::GroupedFp8Kernel::kSwapAB;
  run_case({8, 256, 512, 40}, true, 30, kernel);
  run_case({32, 512, 7168, 12}, true, 31, kernel);  // V3 gate_up K, decode-sized groups
  run_case({16, 7168, 2048, 9}, true, 32, kernel);  // V3 down dims
  run_case({3, 384, 384, 70}, true, 33, kernel);
  run_case({1, 128, 128, 1}, true, 34, kernel);
}

// kAuto swaps at decode-sized groups (a host bound of <= 16 rows per expert on average) and
// takes row tiles past it; both within the reference's bound.
TEST(CudaMoeGroupedGemm, Fp8AutoPicksByRoutedRows) {
  WS_REQUIRE_GPU();
  run_case({64, 256, 512, 8}, true, 40, cuda::GroupedFp8Kernel::kAuto, true);
  run_case({4, 256, 512, 300}, true, 41, cuda::GroupedFp8Kernel::kAuto, true);
}

TEST(CudaMoeGroupedGemm, RejectsUnalignedFp8Shapes) {
  WS_REQUIRE_GPU();
  cuda::GroupedGemmParams p{};
  p.num_experts = 2;
  p.n = 200;
  p.k = 256;
  EXPECT_ANY_THROW(cuda::launch_grouped_gemm_fp8(p, nullptr));
}

}  // namespace
}  // namespace wideserve::test
