// launch_mla_token (one decode token's attention core in one clustered launch) against its
// float64 CPU reference, and its cache row against launch_mla_rope_prep's bit for bit: head
// counts 16 and 32, page sizes 1 / 16 / 32 / 64, clusters of 8 and 16, positions from 0 (the
// token alone) through fewer rows than CTAs to more rows than the ring holds, a token that does
// not see itself (seq_len <= position), NaN in every cache row the token must not read (its own
// slot and every slot outside its pages), eager and replayed from a graph; cache rows by
// tensor-map boxes (pages of 16 rows and more) and by one copy per row.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention/mla_token.h"
#include "backend/cuda/attention/mla_token_ref.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gpu_test_util.h"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

constexpr int64_t kNope = 128, kV = 128, kLat = 512, kRope = 64, kRow = 576;

struct Case {
  int64_t heads, page_size, position;
  uint64_t seed;
  int cluster = 8;
  int64_t seq_len = 0;  // 0: position + 1 (the token sees itself)
  bool row_copies = false;
};

// Bf16 copies of v on the device; v itself rounded to the bf16 values.
DeviceBuffer<__nv_bfloat16> upload_bf16(std::vector<float>& v) {
  v = test::round_bf16(v);
  DeviceBuffer<__nv_bfloat16> d(v.size());
  d.upload(test::to_bf16(v));
  return d;
}

void run_case(const Case& c) {
  const int64_t H = c.heads, ps = c.page_size, pos = c.position;
  const int64_t len = c.seq_len > 0 ? c.seq_len : pos + 1;
  const int64_t used = (pos + ps) / ps, pages = used + 5, slots = pages * ps;
  std::mt19937_64 g(c.seed);
  std::vector<int32_t> perm(pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), g);
  std::vector<int32_t> table(perm.begin(), perm.begin() + used);
  const int64_t slot = int64_t{table[pos / ps]} * ps + pos % ps;

  MlaTokenRefInputs in;
  in.page_table = table;
  in.heads = H;
  in.q_stride = kNope + kRope;
  in.page_size = ps;
  in.position = pos;
  in.seq_len = len;
  in.eps = 1e-6f;
  in.softmax_scale = 1.f / std::sqrt(192.f);
  in.attention_factor = 1.1f;
  in.q = test::randn(H * in.q_stride, c.seed + 1);
  in.kv_a = test::randn(kRow, c.seed + 2);
  in.kv_a_norm = test::randn(kLat, c.seed + 3, 0.1f);
  for (auto& w : in.kv_a_norm) w += 1.f;
  in.w_kv_b = test::randn(H * (kNope + kV) * kLat, c.seed + 4, 0.05f);
  in.kv_cache = test::randn(slots * kRow, c.seed + 5);
  in.inv_freq.resize(kRope / 2);
  for (int64_t i = 0; i < kRope / 2; ++i) in.inv_freq[i] = std::pow(10000.f, -2.f * i / kRope);
  // Rows the token must not read: its own slot (made from kv_a) and every slot of unused pages.
  std::vector<bool> seen(slots, false);
  for (int64_t p = 0; p < std::min(pos, len); ++p)
    seen[int64_t{table[p / ps]} * ps + p % ps] = true;
  for (int64_t s = 0; s < slots; ++s)
    if (!seen[s]) std::fill_n(in.kv_cache.begin() + s * kRow, kRow, NAN);

  auto dq = upload_bf16(in.q), dkva = upload_bf16(in.kv_a), dnorm = upload_bf16(in.kv_a_norm),
       dw = upload_bf16(in.w_kv_b), dcache = upload_bf16(in.kv_cache);
  DeviceBuffer<float> dinv(in.inv_freq.size());
  dinv.upload(in.inv_freq);
  DeviceBuffer<int32_t> dtable(table.size()), dpos(1), dslot(1), dlen(1);
  dtable.upload(table);
  dpos.upload({static_cast<int32_t>(pos)});
  dslot.upload({static_cast<int32_t>(slot)});
  dlen.upload({static_cast<int32_t>(len)});
  DeviceBuffer<__nv_bfloat16> dout(H * kV);

  MlaTokenParams p;
  p.q = dq.get();
  p.kv_a = dkva.get();
  p.kv_a_norm = dnorm.get();
  p.w_kv_b = dw.get();
  p.rope = RopeTable{dinv.get(), kRope, in.attention_factor};
  p.position = dpos.get();
  p.slot = dslot.get();
  p.page_table = dtable.get();
  p.seq_len = dlen.get();
  p.kv_cache = dcache.get();
  p.out = dout.get();
  p.heads = H;
  p.q_stride = in.q_stride;
  p.nope = kNope;
  p.v_dim = kV;
  p.page_size = ps;
  p.slots = slots;
  p.eps = in.eps;
  p.softmax_scale = in.softmax_scale;
  p.cluster = c.cluster;
  p.row_copies = c.row_copies;
  ASSERT_EQ(mla_token_unsupported(p), "");
  cudaStream_t st;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  launch_mla_token(p, st);
  WS_CUDA_CHECK(cudaStreamSynchronize(st));

  std::vector<double> ref;
  std::vector<float> ref_row;
  mla_token_ref(in, ref, ref_row);
  const auto out = test::from_bf16(dout.download());
  const double rel = test::rel_l2(out, ref);
  EXPECT_LT(rel, 5e-3) << "heads " << H << " page " << ps << " pos " << pos;

  // The cache row: launch_mla_rope_prep's bit for bit, and within a bf16 step of the reference.
  const auto cache = dcache.download();
  DeviceBuffer<__nv_bfloat16> prep_cache(slots * kRow), qtail(H * kRow);
  WS_CUDA_CHECK(cudaMemset(prep_cache.get(), 0, prep_cache.size() * 2));
  const LatentPrepParams lp{dkva.get(), dnorm.get(), dpos.get(), dslot.get(), prep_cache.get(),
                            p.rope,     1,           kLat,       slots,       in.eps};
  const QueryRopeParams qp{dq.get(), qtail.get(), dpos.get(), p.rope, 1,
                           H,        in.q_stride, kNope,      kRow,   kLat};
  launch_mla_rope_prep(lp, qp, st);
  WS_CUDA_CHECK(cudaStreamSynchronize(st));
  const auto prep = prep_cache.download();
  EXPECT_EQ(0, std::memcmp(cache.data() + slot * kRow, prep.data() + slot * kRow, kRow * 2))
      << "heads " << H << " page " << ps << " pos " << pos;
  int far = 0;
  for (int64_t i = 0; i < kRow; ++i) {
    const float a = __bfloat162float(cache[slot * kRow + i]), b = ref_row[i];
    far += std::fabs(a - b) > std::fabs(b) * (1.f / 128) + 1e-6f;
  }
  EXPECT_EQ(far, 0) << "cache row against the reference, pos " << pos;

  // A graph replay gives the same bits.
  std::vector<__nv_bfloat16> eager = dout.download();
  WS_CUDA_CHECK(cudaMemset(dout.get(), 0, dout.size() * 2));
  {
    test::CapturedGraph graph(st, [&] { launch_mla_token(p, st); });
    graph.launch();
    graph.launch();
  }
  WS_CUDA_CHECK(cudaStreamDestroy(st));
  const auto replay = dout.download();
  EXPECT_EQ(0, std::memcmp(eager.data(), replay.data(), eager.size() * 2)) << "graph, pos " << pos;
}

TEST(MlaToken, MatchesReferenceAcrossPositionsPagesAndHeads) {
  WS_REQUIRE_GPU();
  uint64_t seed = 500;
  for (const Case& c : std::vector<Case>{{16, 64, 0, 0},
                                         {16, 64, 4, 0},
                                         {16, 1, 77, 0},
                                         {16, 16, 700, 0},
                                         {16, 64, 1023, 0},
                                         {32, 64, 1500, 0},
                                         {16, 32, 2999, 0},
                                         {16, 64, 300, 0, 8, 250}}) {  // sees 250 rows, not itself
    for (int cluster : {8, 16})
      for (bool rows : {false, true}) {
        Case k = c;
        k.seed = seed += 10;
        k.cluster = cluster;
        k.row_copies = rows;
        SCOPED_TRACE("cluster " + std::to_string(cluster) + (rows ? ", row copies" : ""));
        run_case(k);
      }
  }
}

TEST(MlaToken, RejectsShapesItDoesNotTake) {
  MlaTokenParams p;
  EXPECT_NE(mla_token_unsupported(p), "");
  int dummy[4] = {};
  auto* b = reinterpret_cast<__nv_bfloat16*>(dummy);
  auto* i = reinterpret_cast<int32_t*>(dummy);
  p.q = p.kv_a = p.kv_a_norm = p.w_kv_b = b;
  p.kv_cache = p.out = b;
  p.position = p.slot = p.page_table = p.seq_len = i;
  float f = 1.f;
  p.rope = RopeTable{&f, kRope, 1.f};
  p.heads = 16;
  p.q_stride = 192;
  p.nope = kNope;
  p.v_dim = kV;
  p.page_size = 64;
  p.slots = 64;
  EXPECT_EQ(mla_token_unsupported(p), "");
  p.cluster = 4;
  EXPECT_NE(mla_token_unsupported(p).find("cluster"), std::string::npos);
  p.cluster = 0;
  p.heads = 15;
  EXPECT_NE(mla_token_unsupported(p).find("even head count"), std::string::npos);
  p.heads = 16;
  p.nope = 64;
  EXPECT_NE(mla_token_unsupported(p).find("nope 128"), std::string::npos);
  p.nope = kNope;
  p.q_stride = 100;
  EXPECT_NE(mla_token_unsupported(p), "");
  EXPECT_TRUE(mla_token_preferred(16, 1024));
  EXPECT_FALSE(mla_token_preferred(128, 1024));
  EXPECT_FALSE(mla_token_preferred(16, 65536));
}

}  // namespace
}  // namespace wideserve::cuda
