// RMSNorm and argmax kernels against CPU references: fp32 and bf16 inputs, gathered rows and
// strides, one row (the latency-bound decode case) up to 256; argmax ties, NaN and infinities on
// both the float4 and the scalar path.
#include <gtest/gtest.h>

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gpu_test_util.h"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

float bf(float v) {
  return __bfloat162float(__float2bfloat16(v));
}

struct NormCase {
  int64_t rows, dim;
  bool bf16_in, gather;
};

// Runs launch_rms_norm on random rows (x row stride x_stride, output row stride out_stride) and
// checks it against the CPU reference; with fp8 (dim % 128 == 0), also the fused FP8 copy
// against launch_quantize_fp8 of the output, bit for bit (q bytes and scales).
void check_rms_norm(const NormCase& c, int64_t x_stride, int64_t out_stride, bool fp8,
                    uint64_t seed) {
  const int64_t in_rows = c.rows + 2;
  auto x = test::randn(static_cast<size_t>(in_rows * x_stride), seed, 2.f);
  auto wf = test::randn(static_cast<size_t>(c.dim), seed + 1, 1.f);
  std::vector<__nv_bfloat16> w(wf.size()), xb(x.size());
  for (size_t i = 0; i < wf.size(); ++i) w[i] = __float2bfloat16(wf[i]);
  for (size_t i = 0; i < x.size(); ++i) {
    xb[i] = __float2bfloat16(x[i]);
    if (c.bf16_in) x[i] = __bfloat162float(xb[i]);
  }
  std::vector<int32_t> idx(static_cast<size_t>(c.rows));
  for (int64_t r = 0; r < c.rows; ++r)
    idx[r] = static_cast<int32_t>(c.gather ? (r * 7 + 1) % in_rows : r);
  DeviceBuffer<float> dx(x.size());
  DeviceBuffer<__nv_bfloat16> dxb(xb.size()), dw(w.size()),
      dout(static_cast<size_t>(c.rows * out_stride));
  DeviceBuffer<int32_t> didx(idx.size());
  DeviceBuffer<__nv_fp8_e4m3> q(static_cast<size_t>(c.rows * c.dim)), q2(q.size());
  DeviceBuffer<float> qs(static_cast<size_t>(c.rows * (c.dim / 128 + 1))), qs2(qs.size());
  dx.upload(x);
  dxb.upload(xb);
  dw.upload(w);
  didx.upload(idx);
  RmsNormParams p;
  p.row_index = c.gather ? didx.get() : nullptr;
  if (c.bf16_in)
    p.x_bf16 = dxb.get();
  else
    p.x = dx.get();
  p.w = dw.get();
  p.out = dout.get();
  p.rows = c.rows;
  p.dim = c.dim;
  p.x_stride = x_stride;
  p.out_stride = out_stride;
  p.eps = 1e-6f;
  if (fp8) {
    p.q = q.get();
    p.q_scale = qs.get();
  }
  launch_rms_norm(p, nullptr);
  auto out = dout.download();
  std::vector<float> got;
  std::vector<double> want;
  for (int64_t r = 0; r < c.rows; ++r) {
    const float* row = x.data() + idx[r] * x_stride;
    double ss = 0;
    for (int64_t i = 0; i < c.dim; ++i) ss += double(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / c.dim + 1e-6));
    for (int64_t i = 0; i < c.dim; ++i) {
      want.push_back(bf(bf(row[i] * inv) * __bfloat162float(w[i])));
      got.push_back(__bfloat162float(out[r * out_stride + i]));
    }
  }
  // bf16 output rounding of two products: ~3e-3; a wrong row or scale is O(1).
  EXPECT_LT(test::rel_l2(got, want), 5e-3)
      << "rows " << c.rows << " dim " << c.dim << (c.bf16_in ? " bf16" : " fp32");
  if (!fp8) return;
  launch_quantize_fp8({dout.get(), c.rows, c.dim, out_stride, q2.get(), qs2.get()}, nullptr);
  const auto a = q.download(), b = q2.download();
  const auto sa = qs.download(), sb = qs2.download();
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size())) << "fp8 bytes, dim " << c.dim;
  for (int64_t i = 0; i < c.rows * (c.dim / 128); ++i)
    EXPECT_EQ(sa[i], sb[i]) << "scale " << i << ", dim " << c.dim;
}

// Unaligned strides: the scalar kernel.
TEST(CudaOps, RmsNormMatchesCpuReference) {
  WS_REQUIRE_GPU();
  uint64_t seed = 10;
  for (const NormCase& c : {NormCase{1, 7168, false, false}, NormCase{1, 7168, true, false},
                            NormCase{3, 2048, false, true}, NormCase{256, 1536, true, true},
                            NormCase{5, 100, false, false}, NormCase{2, 512, true, false}}) {
    check_rms_norm(c, c.dim + 3, c.dim + 5, false, seed);
    seed += 2;
  }
}

// Packed rows: the vector kernel, with its fused FP8 copy where dim % 128 == 0.
TEST(CudaOps, RmsNormVectorPathAndFusedFp8Copy) {
  WS_REQUIRE_GPU();
  uint64_t seed = 50;
  for (const NormCase& c : {NormCase{1, 7168, false, false}, NormCase{2, 1536, true, false},
                            NormCase{3, 2048, false, true}, NormCase{64, 512, true, false},
                            NormCase{1, 9216, false, false}, NormCase{4, 520, false, false}}) {
    check_rms_norm(c, c.dim, c.dim, c.dim % 128 == 0, seed);
    seed += 2;
  }
}

// Embedding rows gathered exactly, as bf16 and as the fp32 residual: the vector kernel (dim % 8
// == 0) and the scalar one (odd dim, or an unaligned output).
TEST(CudaOps, EmbeddingVectorAndScalar) {
  WS_REQUIRE_GPU();
  struct Case {
    int64_t tokens, dim, vocab, off;
  };
  uint64_t seed = 600;
  for (const Case& c :
       {Case{256, 7168, 50, 0}, Case{1, 2048, 7, 0}, Case{3, 100, 9, 0}, Case{4, 64, 5, 1}}) {
    SCOPED_TRACE("tokens " + std::to_string(c.tokens) + " dim " + std::to_string(c.dim));
    const auto tf = test::randn(static_cast<size_t>(c.vocab * c.dim), seed++, 2.f);
    std::vector<__nv_bfloat16> table(tf.size());
    for (size_t i = 0; i < tf.size(); ++i) table[i] = __float2bfloat16(tf[i]);
    std::vector<int32_t> ids(static_cast<size_t>(c.tokens));
    for (int64_t t = 0; t < c.tokens; ++t) ids[t] = static_cast<int32_t>((t * 13 + 3) % c.vocab);
    DeviceBuffer<__nv_bfloat16> dt(table.size()), out(static_cast<size_t>(c.tokens * c.dim + 1));
    DeviceBuffer<float> res(static_cast<size_t>(c.tokens * c.dim));
    DeviceBuffer<int32_t> dids(ids.size());
    dt.upload(table);
    dids.upload(ids);
    launch_embedding({dids.get(), dt.get(), out.get() + c.off, res.get(), c.tokens, c.dim, c.vocab},
                     nullptr);
    const auto o = out.download();
    const auto r = res.download();
    int64_t bad = 0;
    for (int64_t t = 0; t < c.tokens; ++t)
      for (int64_t i = 0; i < c.dim; ++i) {
        const __nv_bfloat16 want = table[ids[t] * c.dim + i];
        bad += std::memcmp(&o[c.off + t * c.dim + i], &want, 2) != 0;
        bad += r[t * c.dim + i] != __bfloat162float(want);
      }
    EXPECT_EQ(bad, 0);
  }
}

// RmsNormParams::add equals launch_add_residual then launch_rms_norm, bit for bit: the updated
// residual rows, the normalised output and its FP8 copy; vector and scalar kernels, and with a
// row index only the indexed rows are updated.
TEST(CudaOps, RmsNormWithResidualUpdateEqualsAddThenNorm) {
  WS_REQUIRE_GPU();
  struct Case {
    int64_t rows, dim;
    bool gather, fp8;
  };
  uint64_t seed = 400;
  for (const Case& c :
       {Case{256, 7168, false, true}, Case{1, 7168, false, true}, Case{5, 100, false, false},
        Case{4, 2048, true, true}, Case{3, 520, true, false}}) {
    SCOPED_TRACE("rows " + std::to_string(c.rows) + " dim " + std::to_string(c.dim));
    const int64_t in_rows = c.rows + 2, n = in_rows * c.dim;
    const auto hf = test::randn(static_cast<size_t>(n), seed, 3.f);
    const auto af = test::randn(static_cast<size_t>(n), seed + 1, 1.f);
    const auto wf = test::randn(static_cast<size_t>(c.dim), seed + 2, 1.f);
    std::vector<__nv_bfloat16> a(af.size()), w(wf.size());
    for (size_t i = 0; i < a.size(); ++i) a[i] = __float2bfloat16(af[i]);
    for (size_t i = 0; i < w.size(); ++i) w[i] = __float2bfloat16(wf[i]);
    std::vector<int32_t> idx(static_cast<size_t>(c.rows));
    for (int64_t r = 0; r < c.rows; ++r)
      idx[r] = static_cast<int32_t>(c.gather ? (r * 7 + 1) % in_rows : r);  // distinct
    DeviceBuffer<float> h1(hf.size()), h2(hf.size());
    DeviceBuffer<__nv_bfloat16> da(a.size()), dw(w.size()), o1(static_cast<size_t>(c.rows * c.dim)),
        o2(o1.size());
    DeviceBuffer<int32_t> didx(idx.size());
    DeviceBuffer<__nv_fp8_e4m3> q1(o1.size()), q2(o1.size());
    DeviceBuffer<float> s1(static_cast<size_t>(c.rows * (c.dim / 128 + 1))), s2(s1.size());
    h1.upload(hf);
    h2.upload(hf);
    da.upload(a);
    dw.upload(w);
    didx.upload(idx);
    RmsNormParams p{c.gather ? didx.get() : nullptr,
                    nullptr,
                    nullptr,
                    dw.get(),
                    nullptr,
                    c.rows,
                    c.dim,
                    c.dim,
                    c.dim,
                    1e-6f};
    // Reference: the whole residual updated, then the norm.
    launch_add_residual({da.get(), h1.get(), in_rows, c.dim}, nullptr);
    p.x = h1.get();
    p.out = o1.get();
    if (c.fp8) p.q = q1.get(), p.q_scale = s1.get();
    launch_rms_norm(p, nullptr);
    // Fused.
    p.x = h2.get();
    p.out = o2.get();
    p.add = da.get();
    if (c.fp8) p.q = q2.get(), p.q_scale = s2.get();
    launch_rms_norm(p, nullptr);
    const auto ha = h1.download(), hb = h2.download();
    const auto oa = o1.download(), ob = o2.download();
    EXPECT_EQ(0, std::memcmp(oa.data(), ob.data(), oa.size() * 2)) << "normalised rows";
    int64_t bad = 0;
    for (int64_t r = 0; r < in_rows; ++r) {
      const bool updated =
          c.gather ? std::find(idx.begin(), idx.end(), r) != idx.end() : r < c.rows;
      for (int64_t i = 0; i < c.dim; ++i) {
        const float want = updated ? ha[r * c.dim + i] : hf[r * c.dim + i];
        bad += hb[r * c.dim + i] != want;
      }
    }
    EXPECT_EQ(bad, 0) << "residual elements";
    if (c.fp8) {
      const auto qa = q1.download(), qb = q2.download();
      const auto sa = s1.download(), sb = s2.download();
      EXPECT_EQ(0, std::memcmp(qa.data(), qb.data(), qa.size())) << "fp8 bytes";
      EXPECT_EQ(0, std::memcmp(sa.data(), sb.data(), c.rows * (c.dim / 128) * 4)) << "fp8 scales";
    }
    seed += 3;
  }
  // The update needs the fp32 residual.
  DeviceBuffer<__nv_bfloat16> x(128), w(128), o(128);
  RmsNormParams bad{nullptr, nullptr, x.get(), w.get(), o.get(), 1, 128, 128, 128, 1e-6f};
  bad.add = x.get();
  EXPECT_THROW(launch_rms_norm(bad, nullptr), std::exception);
}

// silu_mul against the CPU reference (silu rounded to bf16 before the product, HF's order) on
// the vector kernel (inter % 8 == 0) and the scalar one (odd inter, or an unaligned x), and the
// vector kernel's FP8 copy against launch_quantize_fp8 of its output, bit for bit.
TEST(CudaOps, SiluMulVectorScalarAndFusedFp8Copy) {
  WS_REQUIRE_GPU();
  struct Case {
    int64_t rows, inter;
    bool fp8, offset;
  };
  uint64_t seed = 70;
  for (const Case& c :
       {Case{1, 18432, true, false}, Case{256, 2048, true, false}, Case{3, 1408, false, false},
        Case{5, 100, false, false}, Case{2, 27, false, false}, Case{4, 512, false, true}}) {
    const int64_t off = c.offset ? 1 : 0;  // x shifted by one element: not 16-byte aligned
    const auto xf = test::randn(static_cast<size_t>(c.rows * 2 * c.inter + off), seed, 3.f);
    std::vector<__nv_bfloat16> x(xf.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = __float2bfloat16(xf[i]);
    DeviceBuffer<__nv_bfloat16> dx(x.size()), dout(static_cast<size_t>(c.rows * c.inter));
    DeviceBuffer<__nv_fp8_e4m3> q(static_cast<size_t>(c.rows * c.inter)), q2(q.size());
    DeviceBuffer<float> qs(static_cast<size_t>(c.rows * (c.inter / 128 + 1))), qs2(qs.size());
    dx.upload(x);
    SiluMulParams p{dx.get() + off, dout.get(), c.rows, c.inter};
    if (c.fp8) {
      p.q = q.get();
      p.q_scale = qs.get();
      ASSERT_TRUE(silu_mul_fp8_supported(p));
    }
    launch_silu_mul(p, nullptr);
    const auto out = dout.download();
    int64_t bad = 0;
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t i = 0; i < c.inter; ++i) {
        const float g = __bfloat162float(x[off + r * 2 * c.inter + i]);
        const float u = __bfloat162float(x[off + r * 2 * c.inter + c.inter + i]);
        const float want = bf(bf(g / (1.f + std::exp(-g))) * u);
        const float got = __bfloat162float(out[r * c.inter + i]);
        // __expf vs std::exp may move a value by one bf16 step; anything else is a bug.
        if (std::fabs(got - want) > 8e-3f * std::fabs(want) + 1e-6f) ++bad;
      }
    EXPECT_EQ(bad, 0) << "rows " << c.rows << " inter " << c.inter;
    seed += 1;
    if (!c.fp8) continue;
    launch_quantize_fp8({dout.get(), c.rows, c.inter, 0, q2.get(), qs2.get()}, nullptr);
    const auto a = q.download(), b = q2.download();
    const auto sa = qs.download(), sb = qs2.download();
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size())) << "fp8 bytes, inter " << c.inter;
    for (int64_t i = 0; i < c.rows * (c.inter / 128); ++i)
      EXPECT_EQ(sa[i], sb[i]) << "scale " << i << ", inter " << c.inter;
  }
  // The FP8 copy refuses shapes it cannot group.
  EXPECT_FALSE(silu_mul_fp8_supported({nullptr, nullptr, 2, 100, nullptr, nullptr}));
}

// add_residual (fp32 residual += bf16 x): the vector kernel and the scalar one (dim % 8 != 0,
// or an unaligned x) against the host sum, exactly.
TEST(CudaOps, AddResidualVectorAndScalar) {
  WS_REQUIRE_GPU();
  struct Case {
    int64_t rows, dim;
    bool offset;
  };
  uint64_t seed = 90;
  for (const Case& c : {Case{256, 7168, false}, Case{1, 2048, false}, Case{3, 100, false},
                        Case{2, 13, false}, Case{4, 512, true}}) {
    const int64_t off = c.offset ? 1 : 0;
    const auto xf = test::randn(static_cast<size_t>(c.rows * c.dim + off), seed, 2.f);
    auto res = test::randn(static_cast<size_t>(c.rows * c.dim), seed + 1, 5.f);
    std::vector<__nv_bfloat16> x(xf.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = __float2bfloat16(xf[i]);
    DeviceBuffer<__nv_bfloat16> dx(x.size());
    DeviceBuffer<float> dres(res.size());
    dx.upload(x);
    dres.upload(res);
    launch_add_residual({dx.get() + off, dres.get(), c.rows, c.dim}, nullptr);
    const auto got = dres.download();
    int64_t bad = 0;
    for (size_t i = 0; i < res.size(); ++i)
      if (got[i] != res[i] + __bfloat162float(x[off + i])) ++bad;
    EXPECT_EQ(bad, 0) << "rows " << c.rows << " dim " << c.dim;
    seed += 2;
  }
}

// launch_mla_rope_prep equals launch_latent_prep + launch_query_rope bit for bit: cache rows
// (latent norm + key rope) and the absorbed query's tail, for head counts below, at and past one
// 32-head block.
TEST(CudaOps, MlaRopePrepEqualsSeparateKernels) {
  WS_REQUIRE_GPU();
  const int64_t T = 3, lat = 512, rd = 64, nope = 128, qk = nope + rd, row = lat + rd, slots = 16;
  std::vector<float> inv(rd / 2);
  for (int64_t i = 0; i < rd / 2; ++i) inv[i] = std::pow(10000.f, -2.f * i / rd);
  DeviceBuffer<float> dinv(inv.size());
  dinv.upload(inv);
  const RopeTable rope{dinv.get(), rd, 1.25f};
  const std::vector<int32_t> pos = {0, 17, 4093}, slot = {5, 0, 11};
  DeviceBuffer<int32_t> dpos(pos.size()), dslot(slot.size());
  dpos.upload(pos);
  dslot.upload(slot);
  uint64_t seed = 70;
  for (int64_t nh : {16, 40, 128}) {
    auto mk = [&](size_t n) {
      auto f = test::randn(n, seed++, 2.f);
      std::vector<__nv_bfloat16> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = __float2bfloat16(f[i]);
      DeviceBuffer<__nv_bfloat16> d(n);
      d.upload(v);
      return d;
    };
    auto kva = mk(static_cast<size_t>(T * row)), nw = mk(static_cast<size_t>(lat)),
         q = mk(static_cast<size_t>(T * nh * qk));
    auto outa = mk(static_cast<size_t>(T * nh * row)),
         cachea = mk(static_cast<size_t>(slots * row));
    DeviceBuffer<__nv_bfloat16> outb(outa.size()), cacheb(cachea.size());
    WS_CUDA_CHECK(cudaMemcpy(outb.get(), outa.get(), outa.size() * 2, cudaMemcpyDeviceToDevice));
    WS_CUDA_CHECK(
        cudaMemcpy(cacheb.get(), cachea.get(), cachea.size() * 2, cudaMemcpyDeviceToDevice));
    LatentPrepParams lp{kva.get(), nw.get(), dpos.get(), dslot.get(), cachea.get(),
                        rope,      T,        lat,        slots,       1e-6f};
    QueryRopeParams qp{q.get(), outa.get(), dpos.get(), rope, T, nh, qk, nope, row, lat};
    launch_latent_prep(lp, nullptr);
    launch_query_rope(qp, nullptr);
    lp.kv_cache = cacheb.get();
    qp.out = outb.get();
    launch_mla_rope_prep(lp, qp, nullptr);
    const auto oa = outa.download(), ob = outb.download(), ca = cachea.download(),
               cb = cacheb.download();
    EXPECT_EQ(0, std::memcmp(oa.data(), ob.data(), oa.size() * 2)) << "query, heads " << nh;
    EXPECT_EQ(0, std::memcmp(ca.data(), cb.data(), ca.size() * 2)) << "cache, heads " << nh;
    // kv_a as the tail of a fused [q_a | kv_a] row (stride 2112, offset 1536): same cache rows.
    const int64_t fused = 1536 + row;
    auto wide = mk(static_cast<size_t>(T * fused));
    WS_CUDA_CHECK(cudaMemcpy2D(wide.get() + 1536, fused * 2, kva.get(), row * 2, row * 2, T,
                               cudaMemcpyDeviceToDevice));
    auto cachec = mk(static_cast<size_t>(slots * row));  // random: written rows must change
    LatentPrepParams ls = lp;
    ls.kv_a = wide.get() + 1536;
    ls.kv_a_stride = fused;
    ls.kv_cache = cachec.get();
    launch_mla_rope_prep(ls, qp, nullptr);
    const auto cc = cachec.download();
    for (int32_t sl : slot)
      EXPECT_EQ(0, std::memcmp(cb.data() + sl * row, cc.data() + sl * row, row * 2))
          << "strided, heads " << nh << ", slot " << sl;
  }
  // Disagreeing halves are rejected.
  LatentPrepParams lp{nullptr, nullptr, dpos.get(), dslot.get(), nullptr,
                      rope,    2,       lat,        slots,       1e-6f};
  QueryRopeParams qp{nullptr, nullptr, dpos.get(), rope, 3, 16, qk, nope, row, lat};
  EXPECT_THROW(launch_mla_rope_prep(lp, qp, nullptr), std::exception);
}

int32_t cpu_argmax(const float* x, int64_t n) {
  int32_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isnan(x[i]) && (best < 0 || x[i] > x[best])) best = static_cast<int32_t>(i);
  return best < 0 ? 0 : best;
}

TEST(CudaOps, ArgmaxFirstIndexOfMaxSkippingNan) {
  WS_REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  uint64_t seed = 50;
  // 129280 (DeepSeek's vocabulary) and 1000 take the float4 path, 1003 the scalar one.
  for (int64_t vocab : {129280, 1000, 1003}) {
    for (int64_t rows : {1, 9, 256}) {
      auto x = test::randn(static_cast<size_t>(rows * vocab), seed++, 3.f);
      for (int64_t r = 0; r < rows; ++r) {
        float* row = x.data() + r * vocab;
        switch (r % 9) {
          case 1:  // the maximum at three places: the first wins
            row[vocab - 1] = row[vocab / 2] = row[7] = 50.f;
            break;
          case 2:  // NaN everywhere but one finite value
            for (int64_t i = 0; i < vocab; ++i) row[i] = nan;
            row[vocab - 2] = -3.f;
            break;
          case 3:  // all NaN: token 0
            for (int64_t i = 0; i < vocab; ++i) row[i] = nan;
            break;
          case 4:  // -inf everywhere, NaN first: the first -inf
            for (int64_t i = 0; i < vocab; ++i) row[i] = -inf;
            row[0] = nan;
            break;
          case 5:  // +inf beats everything, NaN next to it
            row[vocab / 3] = inf;
            row[vocab / 3 - 1] = nan;
            break;
          case 6:  // the maximum in the last element (tail of the vector loop)
            row[vocab - 1] = 100.f;
            break;
          default:
            break;
        }
      }
      DeviceBuffer<float> dl(x.size());
      DeviceBuffer<int32_t> ids(static_cast<size_t>(rows));
      dl.upload(x);
      // One CTA per row, then (with a workspace) rows split over several CTAs where that applies,
      // twice: the second launch finds the workspace as the first left it.
      DeviceBuffer<uint8_t> ws(argmax_workspace_bytes(rows));
      WS_CUDA_CHECK(cudaMemset(ws.get(), 0, ws.bytes()));
      for (int pass = 0; pass < 3; ++pass) {
        ArgmaxParams ap{dl.get(), ids.get(), rows, vocab};
        if (pass > 0) {
          ap.workspace = ws.get();
          ap.workspace_bytes = ws.bytes();
        }
        WS_CUDA_CHECK(cudaMemset(ids.get(), 0xFF, ids.bytes()));
        launch_argmax(ap, nullptr);
        auto got = ids.download();
        for (int64_t r = 0; r < rows; ++r)
          EXPECT_EQ(got[r], cpu_argmax(x.data() + r * vocab, vocab))
              << "vocab " << vocab << " rows " << rows << " row " << r << " pass " << pass;
      }
    }
  }
}

}  // namespace
}  // namespace wideserve::cuda
