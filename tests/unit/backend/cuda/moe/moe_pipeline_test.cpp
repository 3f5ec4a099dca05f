// The whole routed-expert path on the GPU (routing -> align -> gather -> grouped gate_up ->
// silu_and_mul -> grouped down -> combine + shared), BF16 and FP8, for an EP slice of the experts,
// captured in a CUDA graph: replays must equal the eager run bit for bit and match a CPU reference
// built from the GPU's routing choice (routing itself is tested against router.cpp elsewhere).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_ref.h"
#include "moe_test_util.h"

namespace wideserve::test {
namespace {

constexpr int64_t kT = 50, kH = 256, kI = 256, kTotal = 16, kK = 4, kE = 8, kBegin = 8;

struct Pipeline {
  bool fp8;
  // Inputs.
  cuda::DeviceBuffer<float> logits, bias;
  cuda::DeviceBuffer<__nv_bfloat16> x, shared, wgu16, wdn16;
  cuda::DeviceBuffer<__nv_fp8_e4m3> wgu8, wdn8;
  cuda::DeviceBuffer<float> sgu, sdn;
  // Intermediates (sized by the host bound R = T * k).
  cuda::DeviceBuffer<int32_t> ids{kT * kK}, counts{kE}, offsets{kE + 1}, s2r{kT * kK}, r2s{kT * kK};
  cuda::DeviceBuffer<float> w{kT * kK};
  cuda::DeviceBuffer<char> align_ws{cuda::moe_align_workspace_bytes(kT, kK, kE)};
  cuda::DeviceBuffer<char> gemm_ws{cuda::grouped_gemm_workspace_bytes(kE)};
  cuda::DeviceBuffer<__nv_bfloat16> xs{kT * kK * kH}, gu{kT * kK * 2 * kI}, act{kT * kK * kI},
      ys{kT * kK * kH}, out{kT * kH};
  cuda::DeviceBuffer<__nv_fp8_e4m3> xq{kT * kK * kH}, aq{kT * kK * kI};
  cuda::DeviceBuffer<float> xsc{kT * kK * (kH / 128)}, asc{kT * kK * (kI / 128)};

  void run(cudaStream_t s) {
    const int32_t* nrows = offsets.get() + kE;
    cuda::MoeRoutingParams rp;
    rp.logits = logits.get();
    rp.bias = bias.get();
    rp.num_tokens = kT;
    rp.num_experts = kTotal;
    rp.top_k = kK;
    rp.n_group = 4;
    rp.topk_group = 2;
    rp.scoring = 1;
    rp.topk_method = 2;
    rp.renormalize = true;
    rp.routed_scaling_factor = 2.5f;
    rp.topk_ids = ids.get();
    rp.topk_weights = w.get();
    cuda::launch_moe_routing(rp, s);
    cuda::launch_moe_align({ids.get(), kT, kK, kE, kBegin, counts.get(), offsets.get(), s2r.get(),
                            r2s.get(), align_ws.get()},
                           s);
    cuda::launch_moe_gather(
        {x.get(), s2r.get(), nrows, kT, kK, kH, kT * kK, fp8 ? nullptr : xs.get(),
         fp8 ? xq.get() : nullptr, fp8 ? xsc.get() : nullptr},
        s);
    cuda::GroupedGemmParams g{};
    g.expert_offsets = offsets.get();
    g.num_experts = kE;
    g.max_rows = kT * kK;
    g.workspace = gemm_ws.get();
    g.n = 2 * kI;
    g.k = kH;
    g.d = gu.get();
    if (fp8) {
      g.a = xq.get();
      g.a_scales = xsc.get();
      g.b = wgu8.get();
      g.b_scales = sgu.get();
      cuda::launch_grouped_gemm_fp8(g, s);
    } else {
      g.a = xs.get();
      g.b = wgu16.get();
      cuda::launch_grouped_gemm_bf16(g, s);
    }
    cuda::launch_silu_and_mul({gu.get(), kT * kK, kI, nrows, fp8 ? nullptr : act.get(),
                               fp8 ? aq.get() : nullptr, fp8 ? asc.get() : nullptr},
                              s);
    g.n = kH;
    g.k = kI;
    g.d = ys.get();
    if (fp8) {
      g.a = aq.get();
      g.a_scales = asc.get();
      g.b = wdn8.get();
      g.b_scales = sdn.get();
      cuda::launch_grouped_gemm_fp8(g, s);
    } else {
      g.a = act.get();
      g.b = wdn16.get();
      cuda::launch_grouped_gemm_bf16(g, s);
    }
    cuda::launch_moe_combine({ys.get(), r2s.get(), w.get(), shared.get(), kT, kK, kH, out.get()},
                             s);
  }
};

void check_pipeline(bool fp8) {
  Pipeline p{fp8};
  const auto logits = randn(kT * kTotal, 31, 2.0f), bias = randn(kTotal, 32, 0.1f);
  const auto x = round_bf16(randn(kT * kH, 33));
  const auto sh = round_bf16(randn(kT * kH, 34));
  const auto wgu = round_bf16(randn(kE * 2 * kI * kH, 35, 0.08f));
  const auto wdn = round_bf16(randn(kE * kH * kI, 36, 0.08f));
  p.logits = upload(logits);
  p.bias = upload(bias);
  p.x = upload(to_bf16(x));
  p.shared = upload(to_bf16(sh));
  Fp8Rows qgu, qdn;
  if (fp8) {
    qgu = quantize_blocks(wgu, kE, 2 * kI, kH);
    qdn = quantize_blocks(wdn, kE, kH, kI);
    p.wgu8 = upload(qgu.q);
    p.wdn8 = upload(qdn.q);
    p.sgu = upload(qgu.scale);
    p.sdn = upload(qdn.scale);
  } else {
    p.wgu16 = upload(to_bf16(wgu));
    p.wdn16 = upload(to_bf16(wdn));
  }
  WS_CUDA_CHECK(cudaMemset(p.out.get(), 0xFF, p.out.bytes()));
  cudaStream_t s;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  p.run(s);
  WS_CUDA_CHECK(cudaStreamSynchronize(s));
  const auto eager = p.out.download();
  const auto ids = p.ids.download();
  const auto wts = p.w.download();

  // Graph: capture once, poison the output, replay twice.
  {
    test::CapturedGraph graph(s, [&] { p.run(s); });
    for (int rep = 0; rep < 2; ++rep) {
      WS_CUDA_CHECK(cudaMemsetAsync(p.out.get(), 0xFF, p.out.bytes(), s));
      graph.launch();
      const auto replay = p.out.download();
      ASSERT_EQ(0, std::memcmp(replay.data(), eager.data(), eager.size() * sizeof(eager[0])))
          << (fp8 ? "fp8" : "bf16") << " graph replay differs from the eager run";
    }
  }
  cudaStreamDestroy(s);

  // CPU reference on the GPU's routing; intermediate roundings as the kernels do them.
  std::vector<double> ref(kT * kH);
  int64_t local_slots = 0;
  for (int64_t t = 0; t < kT; ++t) {
    for (int64_t i = 0; i < kH; ++i) ref[t * kH + i] = sh[t * kH + i];
    std::vector<float> xin(x.begin() + t * kH, x.begin() + (t + 1) * kH);
    if (fp8) xin = quantize_rows(xin, 1, kH).dequant;
    for (int64_t j = 0; j < kK; ++j) {
      const int64_t e = ids[t * kK + j] - kBegin;
      if (e < 0 || e >= kE) continue;
      ++local_slots;
      const auto& wg = fp8 ? qgu.dequant : wgu;
      const auto& wd = fp8 ? qdn.dequant : wdn;
      std::vector<float> h2(2 * kI);
      for (int64_t n = 0; n < 2 * kI; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < kH; ++k) acc += double(xin[k]) * wg[(e * 2 * kI + n) * kH + k];
        h2[n] = static_cast<float>(acc);
      }
      h2 = round_bf16(h2);
      const auto a = cuda::ref::silu_and_mul(h2, 1, kI);
      std::vector<float> af(a.begin(), a.end());
      af = fp8 ? quantize_rows(af, 1, kI).dequant : round_bf16(af);
      for (int64_t n = 0; n < kH; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < kI; ++k) acc += double(af[k]) * wd[(e * kH + n) * kI + k];
        ref[t * kH + n] += wts[t * kK + j] * double(__bfloat162float(__float2bfloat16(float(acc))));
      }
    }
  }
  ASSERT_GT(local_slots, 0);
  const double err = rel_l2(from_bf16(eager), ref);
  std::printf("[pipeline %s] local slots %ld of %ld, rel_l2 %.2e\n", fp8 ? "fp8" : "bf16",
              long(local_slots), long(kT * kK), err);
  EXPECT_LT(err, fp8 ? 2e-2 : 1e-2);
}

TEST(CudaMoePipeline, Bf16EagerGraphAndReferenceAgree) {
  WS_REQUIRE_GPU();
  check_pipeline(false);
}

TEST(CudaMoePipeline, Fp8EagerGraphAndReferenceAgree) {
  WS_REQUIRE_GPU();
  check_pipeline(true);
}

}  // namespace
}  // namespace wideserve::test
