// GPU gather (bf16 / fp8), silu_and_mul and combine against CPU references (align: moe_align_test).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_ref.h"
#include "moe_test_util.h"

namespace wideserve::test {
namespace {

TEST(CudaMoeGather, Bf16RowsAndFp8QuantizationMatch) {
  WS_REQUIRE_GPU();
  for (int64_t H : {128, 2048, 7168}) {
    const int64_t T = 37, k = 8, E = 32;
    const auto ids = random_ids(T, k, 256, H, false);
    auto al = run_align(ids, T, k, E, 32);  // EP: only some slots are local
    const auto ref = cuda::ref::moe_align(ids, E, 32);
    const int32_t R = ref.offsets[E];
    const auto x = round_bf16(randn(T * H, 11 + H));
    auto d_x = upload(to_bf16(x));
    auto d_bf = poisoned<__nv_bfloat16>(T * k * H);
    auto d_q = poisoned<__nv_fp8_e4m3>(T * k * H, 0x7F);
    auto d_s = poisoned<float>(T * k * (H / 128));
    cuda::MoeGatherParams p;
    p.x = d_x.get();
    p.sorted_to_slot = al.sorted_to_slot.get();
    p.num_rows = al.offsets.get() + E;
    p.num_tokens = T;
    p.top_k = k;
    p.hidden = H;
    p.max_rows = T * k;
    p.out_bf16 = d_bf.get();
    p.out_fp8 = d_q.get();
    p.out_scales = d_s.get();
    cuda::launch_moe_gather(p, nullptr);
    WS_CUDA_CHECK(cudaDeviceSynchronize());
    const auto bf = from_bf16(d_bf.download());
    const auto q = d_q.download();
    const auto s = d_s.download();
    // Reference: rows of the sorted layout, quantized with the same rule.
    std::vector<float> rows(R * H);
    for (int32_t r = 0; r < R; ++r)
      std::copy_n(&x[(ref.sorted_to_slot[r] / k) * H], H, &rows[r * H]);
    const auto fq = quantize_rows(rows, R, H);
    int64_t bad_bytes = 0;
    for (int64_t i = 0; i < R * H; ++i) {
      ASSERT_EQ(bf[i], rows[i]) << "H=" << H << " i=" << i;
      bad_bytes += q[i].__x != fq.q[i].__x;
    }
    for (int64_t i = 0; i < R * (H / 128); ++i) ASSERT_EQ(s[i], fq.scale[i]) << "H=" << H;
    EXPECT_LE(bad_bytes, R * H / 1000) << "fp8 bytes differing from host rounding, H=" << H;
    // Rows past R stay untouched (poison).
    if (R < T * k) EXPECT_TRUE(std::isnan(bf[R * H]));
  }
}

TEST(CudaMoeSiluAndMul, Bf16AndFp8MatchReference) {
  WS_REQUIRE_GPU();
  for (int64_t I : {128, 1408, 2048, 200}) {
    const int64_t rows = 301, valid = 257;
    const bool fp8 = I % 128 == 0;
    const auto x = round_bf16(randn(rows * 2 * I, 5 + I, 2.0f));
    auto d_x = upload(to_bf16(x));
    std::vector<int32_t> nv{static_cast<int32_t>(valid)};
    auto d_nv = upload(nv);
    auto d_o = poisoned<__nv_bfloat16>(rows * I);
    auto d_q = poisoned<__nv_fp8_e4m3>(rows * I, 0x7F);
    auto d_s = poisoned<float>(rows * (I / 128 + 1));
    cuda::SiluAndMulParams p;
    p.x = d_x.get();
    p.rows = rows;
    p.inter = I;
    p.num_rows = d_nv.get();
    p.out_bf16 = d_o.get();
    p.out_fp8 = fp8 ? d_q.get() : nullptr;
    p.out_scales = fp8 ? d_s.get() : nullptr;
    cuda::launch_silu_and_mul(p, nullptr);
    WS_CUDA_CHECK(cudaDeviceSynchronize());
    const auto ref = cuda::ref::silu_and_mul(x, valid, I);
    auto out = from_bf16(d_o.download());
    EXPECT_TRUE(std::isnan(out[valid * I])) << "row past num_rows was written";
    out.resize(valid * I);
    EXPECT_LT(rel_l2(out, ref), 5e-3) << "I=" << I;
    if (fp8) {
      const auto q = d_q.download();
      const auto s = d_s.download();
      std::vector<float> deq(valid * I);
      for (int64_t r = 0; r < valid; ++r)
        for (int64_t c = 0; c < I; ++c)
          deq[r * I + c] = fp8_to_float(q[r * I + c]) * s[r * (I / 128) + c / 128];
      EXPECT_LT(rel_l2(deq, ref), 4e-2) << "I=" << I;
    }
  }
}

TEST(CudaMoeCombine, WeightedSumInTokenOrder) {
  WS_REQUIRE_GPU();
  for (int64_t H : {8, 2048, 7168}) {
    for (bool with_shared : {false, true}) {
      const int64_t T = 129, k = 6, E = 40;
      const auto ids = random_ids(T, k, 64, H + with_shared, false);
      const auto al = cuda::ref::moe_align(ids, E, 0);  // experts 40..63 are remote (-1)
      const int64_t R = T * k;
      const auto y = round_bf16(randn(R * H, 3 + H));
      const auto w = randn(T * k, 4 + H, 0.5f);
      const auto sh = round_bf16(randn(T * H, 6 + H));
      auto d_y = upload(to_bf16(y));
      auto d_map = upload(al.slot_to_sorted);
      auto d_w = upload(w);
      auto d_sh = upload(to_bf16(sh));
      auto d_out = poisoned<__nv_bfloat16>(T * H);
      cuda::MoeCombineParams p;
      p.y = d_y.get();
      p.slot_to_sorted = d_map.get();
      p.topk_weights = d_w.get();
      p.shared = with_shared ? d_sh.get() : nullptr;
      p.num_tokens = T;
      p.top_k = k;
      p.hidden = H;
      p.out = d_out.get();
      cuda::launch_moe_combine(p, nullptr);
      WS_CUDA_CHECK(cudaDeviceSynchronize());
      const auto ref =
          cuda::ref::moe_combine(y, al.slot_to_sorted, w, with_shared ? &sh : nullptr, T, k, H);
      EXPECT_LT(rel_l2(from_bf16(d_out.download()), ref), 5e-3) << "H=" << H;
    }
  }
}

}  // namespace
}  // namespace wideserve::test
