// The fused small-batch MoE (moe_small.h) against a CPU reference with the grouped pipeline's
// roundings (bf16 GEMM outputs, FP8 1x128 activations), BF16 and FP8, with shared slices and
// remote experts, at shapes that exercise padding (I % 32 != 0), several chunk passes (H = 7168)
// and both down-kernel row counts, BF16 down on CUDA cores (I % 128 != 0) and on tensor cores
// (one and two 8-row groups per CTA); a CUDA graph replay must equal the eager run bit for bit.
// The shape checks run without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/moe/moe_ref.h"
#include "backend/cuda/moe/moe_small.h"
#include "backend/cuda/ops/ops.h"
#include "moe_test_util.h"

namespace wideserve::test {
namespace {

struct Shape {
  const char* name;
  bool fp8;
  int64_t T, H, I, k, E, total, begin, ns;
  bool given_shared = false;  // the shared MLP's output passed in (shared_out), not as units
};

float silu(float g) {
  return g / (1.0f + std::exp(-g));
}
float bf16r(float v) {
  return __bfloat162float(__float2bfloat16(v));
}

// One matrix [rows, cols] stored as bf16 or FP8 blocks; `ref` is what the GPU multiplies by.
struct Mat {
  std::vector<float> ref;
  cuda::DeviceBuffer<__nv_bfloat16> w16;
  cuda::DeviceBuffer<__nv_fp8_e4m3> w8;
  cuda::DeviceBuffer<float> scale;
  const void* ptr(bool fp8) const {
    return fp8 ? static_cast<const void*>(w8.get()) : static_cast<const void*>(w16.get());
  }
};
Mat make_mat(bool fp8, int64_t experts, int64_t rows, int64_t cols, uint64_t seed) {
  Mat m;
  const auto w = round_bf16(randn(experts * rows * cols, seed, 0.06f));
  if (fp8) {
    auto q = quantize_blocks(w, experts, rows, cols);
    m.w8 = upload(q.q);
    m.scale = upload(q.scale);
    m.ref = q.dequant;
  } else {
    m.w16 = upload(to_bf16(w));
    m.ref = w;
  }
  return m;
}

std::vector<float> matvec(const std::vector<float>& w, int64_t row0, int64_t ld, int64_t col0,
                          int64_t rows, int64_t cols, const std::vector<float>& v) {
  std::vector<float> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double acc = 0;
    for (int64_t c = 0; c < cols; ++c) acc += double(w[(row0 + r) * ld + col0 + c]) * v[c];
    out[r] = static_cast<float>(acc);
  }
  return out;
}

void check(const Shape& s) {
  const int64_t T = s.T, H = s.H, I = s.I, K = s.k, Is = s.ns * I, U = K + s.ns;
  const auto x = round_bf16(randn(T * H, 11));
  const auto res0 = randn(T * H, 12);
  const auto ids = random_ids(T, K, s.total, 13, false);
  auto wts = randn(T * K, 14, 0.5f);
  for (auto& w : wts) w = std::fabs(w);
  Mat gu = make_mat(s.fp8, s.E, 2 * I, H, 15), dn = make_mat(s.fp8, s.E, H, I, 16);
  Mat sgu = make_mat(s.fp8, 1, 2 * Is, H, 17), sdn = make_mat(s.fp8, 1, H, Is, 18);

  // Reference: the grouped pipeline's roundings (moe_pipeline_test), per token.
  std::vector<double> ref(T * H);
  std::vector<float> shared_out(T * H, 0.f);
  int64_t remote = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> xin(x.begin() + t * H, x.begin() + (t + 1) * H);
    if (s.fp8) xin = quantize_rows(xin, 1, H).dequant;
    std::vector<double> routed(H, 0.0);
    std::vector<float> shared(H, 0.f);
    for (int64_t u = 0; u < U; ++u) {
      const bool is_shared = u >= K;
      const int64_t e = is_shared ? u - K : ids[t * K + u] - s.begin;
      if (!is_shared && (e < 0 || e >= s.E)) {
        ++remote;
        continue;
      }
      const auto& wg = is_shared ? sgu.ref : gu.ref;
      const int64_t g0 = is_shared ? e * I : e * 2 * I, u0 = is_shared ? Is + e * I : g0 + I;
      const auto g = matvec(wg, g0, H, 0, I, H, xin), up = matvec(wg, u0, H, 0, I, H, xin);
      std::vector<float> a(I);
      for (int64_t j = 0; j < I; ++j) a[j] = silu(bf16r(g[j])) * bf16r(up[j]);
      if (!s.fp8 || is_shared) a = round_bf16(a);
      if (s.fp8) a = quantize_rows(a, 1, I).dequant;
      const auto y =
          is_shared ? matvec(sdn.ref, 0, Is, e * I, H, I, a) : matvec(dn.ref, e * H, I, 0, H, I, a);
      for (int64_t n = 0; n < H; ++n) {
        if (is_shared)
          shared[n] += y[n];
        else
          routed[n] += double(wts[t * K + u]) * bf16r(y[n]);
      }
    }
    for (int64_t n = 0; n < H; ++n) {
      shared_out[t * H + n] = s.ns > 0 ? bf16r(shared[n]) : 0.f;
      const double sum = routed[n] + shared_out[t * H + n];
      ref[t * H + n] = double(bf16r(static_cast<float>(sum)));
    }
  }
  auto d_x = upload(to_bf16(x));
  auto d_ids = upload(ids);
  auto d_w = upload(wts);
  auto d_res = upload(res0);
  auto d_res0 = upload(res0);
  auto d_act = poisoned<float>(cuda::moe_small_act_floats(T, K, s.ns, I));
  cuda::MoeSmallParams p;
  p.x = d_x.get();
  p.topk_ids = d_ids.get();
  p.topk_weights = d_w.get();
  p.num_tokens = T;
  p.top_k = K;
  p.hidden = H;
  p.inter = I;
  p.num_experts = s.E;
  p.expert_begin = s.begin;
  p.fp8 = s.fp8;
  p.gate_up = gu.ptr(s.fp8);
  p.gate_up_scale = gu.scale.get();
  p.down = dn.ptr(s.fp8);
  p.down_scale = dn.scale.get();
  p.num_shared = s.given_shared ? 0 : s.ns;
  auto d_shared = upload(to_bf16(shared_out));
  if (s.given_shared) p.shared_out = d_shared.get();
  if (p.num_shared > 0) {
    p.shared_gate_up = sgu.ptr(s.fp8);
    p.shared_gate_up_scale = sgu.scale.get();
    p.shared_down = sdn.ptr(s.fp8);
    p.shared_down_scale = sdn.scale.get();
  }
  p.act = d_act.get();
  p.residual = d_res.get();
  ASSERT_EQ("", cuda::moe_small_unsupported(p));
  cudaStream_t st;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  auto run = [&] {
    if (s.given_shared) {  // the two launches the model joins a graph branch between
      cuda::launch_moe_small_up(p, st);
      cuda::launch_moe_small_down(p, st);
    } else {
      cuda::launch_moe_small(p, st);
    }
  };
  run();
  WS_CUDA_CHECK(cudaStreamSynchronize(st));
  const auto eager = d_res.download();
  if (!s.fp8 && H <= 2048) {
    // x made by the up launch from fp32 rows (MoeSmallParams::x_norm_src): the bits of a norm
    // launch whose output is x.
    const auto d_h = upload(randn(T * H, 77, 2.0f));
    const auto d_nw = upload(to_bf16(round_bf16(randn(H, 78, 0.3f))));
    auto d_xn = poisoned<__nv_bfloat16>(T * H);
    const float eps = 1e-6f;
    cuda::launch_rms_norm({nullptr, d_h.get(), nullptr, d_nw.get(), d_xn.get(), T, H, H, H, eps},
                          st);
    cuda::MoeSmallParams q = p;
    q.x = d_xn.get();
    std::vector<float> outs[2];
    for (int with_norm = 0; with_norm < 2; ++with_norm) {
      if (with_norm) {
        q.x = nullptr;
        q.x_norm_src = d_h.get();
        q.x_norm_w = d_nw.get();
        q.x_norm_eps = eps;
        ASSERT_EQ("", cuda::moe_small_unsupported(q)) << s.name;
      }
      WS_CUDA_CHECK(
          cudaMemcpyAsync(d_res.get(), d_res0.get(), d_res.bytes(), cudaMemcpyDeviceToDevice, st));
      if (s.given_shared) {
        cuda::launch_moe_small_up(q, st);
        cuda::launch_moe_small_down(q, st);
      } else {
        cuda::launch_moe_small(q, st);
      }
      WS_CUDA_CHECK(cudaStreamSynchronize(st));
      outs[with_norm] = d_res.download();
    }
    EXPECT_EQ(0, std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * sizeof(float)))
        << s.name << ": x made by the up launch differs from the norm launch's";
    WS_CUDA_CHECK(cudaMemcpy(d_res.get(), d_res0.get(), d_res.bytes(), cudaMemcpyDeviceToDevice));
  }
  {
    CapturedGraph graph(st, [&] {
      WS_CUDA_CHECK(
          cudaMemcpyAsync(d_res.get(), d_res0.get(), d_res.bytes(), cudaMemcpyDeviceToDevice, st));
      run();
    });
    for (int rep = 0; rep < 2; ++rep) {
      WS_CUDA_CHECK(cudaMemsetAsync(d_res.get(), 0xFF, d_res.bytes(), st));
      graph.launch();
      const auto replay = d_res.download();
      ASSERT_EQ(0, std::memcmp(replay.data(), eager.data(), eager.size() * sizeof(float)))
          << s.name << ": graph replay differs from the eager run";
    }
  }
  cudaStreamDestroy(st);
  std::vector<float> got(T * H);
  for (int64_t i = 0; i < T * H; ++i) got[i] = eager[i] - res0[i];
  const double err = rel_l2(got, ref);
  std::printf("[moe small %s] T=%ld H=%ld I=%ld units=%ld remote slots %ld, rel_l2 %.2e\n", s.name,
              long(T), long(H), long(I), long(U), long(remote), err);
  EXPECT_LT(err, s.fp8 ? 2e-2 : 1e-2) << s.name;
}

class CudaMoeSmall : public ::testing::TestWithParam<Shape> {};

TEST_P(CudaMoeSmall, MatchesReferenceAndReplaysBitExact) {
  WS_REQUIRE_GPU();
  check(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaMoeSmall,
    ::testing::Values(Shape{"bf16_pad", false, 3, 264, 136, 4, 8, 16, 4, 2},
                      Shape{"bf16_t8_noshared", false, 8, 256, 256, 4, 8, 12, 0, 0},
                      Shape{"bf16_v2lite", false, 1, 2048, 1408, 3, 3, 3, 0, 2},
                      Shape{"bf16_wide_remote", false, 2, 4096, 256, 4, 8, 16, 4, 1},
                      Shape{"fp8_t1", true, 1, 256, 256, 4, 8, 8, 0, 1},
                      Shape{"fp8_t5_remote", true, 5, 384, 256, 3, 4, 8, 2, 2},
                      Shape{"fp8_v3_hidden", true, 2, 7168, 256, 2, 3, 3, 0, 1},
                      Shape{"bf16_v2lite_given_shared", false, 1, 2048, 1408, 3, 3, 3, 0, 2, true},
                      Shape{"fp8_given_shared_remote", true, 2, 384, 256, 3, 4, 8, 2, 2, true}),
    [](const auto& info) { return std::string(info.param.name); });

// Shape checks: host only (no GPU needed).
TEST(CudaMoeSmallShapes, UnsupportedShapesAreNamed) {
  cuda::MoeSmallParams p;
  alignas(16) static float buf[64];
  p.x = reinterpret_cast<const __nv_bfloat16*>(buf);
  p.topk_ids = reinterpret_cast<const int32_t*>(buf);
  p.topk_weights = buf;
  p.gate_up = p.down = buf;
  p.act = p.residual = buf;
  p.num_tokens = 1;
  p.top_k = 2;
  p.num_experts = 4;
  p.hidden = 256;
  p.inter = 128;
  EXPECT_EQ("", cuda::moe_small_unsupported(p));
  auto why = [&](auto edit) {
    cuda::MoeSmallParams q = p;
    edit(q);
    return cuda::moe_small_unsupported(q);
  };
  EXPECT_NE("", why([](auto& q) { q.num_tokens = cuda::kMoeSmallMaxTokens + 1; }));
  EXPECT_NE("", why([](auto& q) { q.hidden = 260; }));
  EXPECT_NE("", why([](auto& q) {
              q.fp8 = true;
              q.gate_up_scale = q.down_scale = buf;
              q.inter = 136;
            }));
  EXPECT_NE("", why([](auto& q) { q.fp8 = true; }));      // no scales
  EXPECT_NE("", why([](auto& q) { q.num_shared = 1; }));  // no shared weights
  EXPECT_NE("", why([](auto& q) { q.top_k = 40; }));
  EXPECT_NE("", why([](auto& q) { q.inter = 1 << 16; }));  // activations exceed shared memory
  EXPECT_NE("", why([](auto& q) { q.x = reinterpret_cast<const __nv_bfloat16*>(buf) + 1; }));
  EXPECT_NE("", why([](auto& q) { q.act = nullptr; }));
  EXPECT_NE("", why([](auto& q) {  // shared output and shared units at once
              q.num_shared = 1;
              q.shared_gate_up = q.shared_down = buf;
              q.shared_out = reinterpret_cast<const __nv_bfloat16*>(buf);
            }));
}

}  // namespace
}  // namespace wideserve::test
