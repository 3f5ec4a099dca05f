// GPU MLA attention (decode, prefill over prefix + chunk, kv store) against the float64 CPU
// reference: random bf16 q/cache, shuffled pages, mixed lengths, page sizes 1/16/64, heads 1..128.
// Decode cases run through both decode kernels (v3 mla_fwd_kernel, v4 warp-specialised).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/attention/mla_decode_tma.h"
#include "backend/cuda/attention/mla_decode_wgmma.h"
#include "backend/cuda/attention/mla_ref.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gpu_test_util.h"

namespace wideserve::cuda {
namespace {

// Decode through `k`; v5 and v6 run their kernels wherever they can (the launcher's size
// heuristic, mla_decode_wgmma_preferred, would send the tests' small batches to v4); v6 falls
// back to v5 where pages are not a multiple of 32 rows.
void decode(const MlaAttentionParams& p, cudaStream_t s, MlaDecodeKernel k) {
  const bool wide = k == MlaDecodeKernel::kV5 || k == MlaDecodeKernel::kV6;
  if (k == MlaDecodeKernel::kV6 && mla_decode_tma_supported(p))
    launch_mla_decode_tma(p, s);
  else if (wide && mla_decode_wgmma_supported(p))
    launch_mla_decode_wgmma(p, s);
  else
    launch_mla_decode(p, s, k);
}

using test::randn;
using test::rel_l2;

std::vector<__nv_bfloat16> to_bf16(std::vector<float>& v) {  // rounds v in place too
  std::vector<__nv_bfloat16> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    b[i] = __float2bfloat16(v[i]);
    v[i] = __bfloat162float(b[i]);
  }
  return b;
}

// A batch: per sequence its cache length and how many of its last positions are queries.
struct Case {
  int64_t heads, page_size;
  std::vector<int32_t> lens, queries;  // queries[s] <= lens[s]
  bool prefill;
  uint64_t seed;
  int64_t extra_capacity =
      0;                   // max_seq_len passed = max(lens) + extra (decode graphs pass capacity)
  bool nan_tails = false;  // cache rows past each sequence's length in its pages hold NaN
};

void run_case(const Case& c, MlaDecodeKernel kernel = MlaDecodeKernel::kV3) {
  const int64_t S = c.lens.size(), H = c.heads, ps = c.page_size;
  const int64_t max_len = *std::max_element(c.lens.begin(), c.lens.end());
  const int64_t mpps = (max_len + ps - 1) / ps + 1;  // one spare page slot per sequence
  // Shuffled physical pages for all sequences, plus unused ones.
  const int64_t num_pages = S * mpps + 3;
  std::vector<int32_t> perm(num_pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 g(c.seed);
  std::shuffle(perm.begin(), perm.end(), g);
  std::vector<int32_t> table(S * mpps);
  for (int64_t i = 0; i < S * mpps; ++i) table[i] = perm[i];
  std::vector<int32_t> token_seq, token_pos;
  for (int64_t s = 0; s < S; ++s)
    for (int32_t i = c.lens[s] - c.queries[s]; i < c.lens[s]; ++i) {
      token_seq.push_back(static_cast<int32_t>(s));
      token_pos.push_back(i);
    }
  const int64_t T = token_seq.size();
  const int64_t slots = num_pages * ps;
  std::vector<float> qf = randn(T * H * kMlaRowDim, c.seed + 1);
  std::vector<float> kvf = randn(slots * kMlaRowDim, c.seed + 2);
  auto qb = to_bf16(qf);
  auto kvb = to_bf16(kvf);
  if (c.nan_tails)  // never attended to: a kernel must not let them reach the output
    for (int64_t s = 0; s < S; ++s)
      for (int64_t pos = c.lens[s]; pos < mpps * ps; ++pos)
        for (int64_t e = 0; e < kMlaRowDim; ++e)
          kvb[(table[s * mpps + pos / ps] * ps + pos % ps) * kMlaRowDim + e] =
              __float2bfloat16(NAN);
  const double scale = 1.0 / std::sqrt(192.0);

  std::vector<double> ref, ref_lse;
  mla_attention_ref(qf, kvf, table, c.lens, token_seq, token_pos, H, mpps, ps, scale, ref, ref_lse);

  DeviceBuffer<__nv_bfloat16> dq(qb.size()), dkv(kvb.size()), dout(T * H * kMlaLatentDim);
  DeviceBuffer<int32_t> dtable(table.size()), dlens(S), dseq(T), dpos(T);
  DeviceBuffer<float> dlse(T * H);
  dq.upload(qb);
  dkv.upload(kvb);
  dtable.upload(table);
  dlens.upload(c.lens);
  dseq.upload(token_seq);
  dpos.upload(token_pos);
  const int64_t max_seq_len = max_len + c.extra_capacity;
  const size_t ws = mla_workspace_bytes(T, H, max_seq_len);
  DeviceBuffer<unsigned char> dws(std::max<size_t>(ws, 1));
  WS_CUDA_CHECK(cudaMemset(dout.get(), 0xFF, dout.bytes()));
  WS_CUDA_CHECK(cudaMemset(dlse.get(), 0xFF, dlse.bytes()));
  WS_CUDA_CHECK(cudaMemset(dws.get(), 0xFF, dws.bytes()));

  MlaAttentionParams p{};
  p.q = dq.get();
  p.kv_cache = dkv.get();
  p.page_table = dtable.get();
  p.seq_lens = dlens.get();
  p.token_seq = dseq.get();
  p.token_pos = dpos.get();
  p.out = dout.get();
  p.lse = dlse.get();
  p.num_tokens = T;
  p.num_seqs = S;
  p.num_heads = H;
  p.max_pages_per_seq = mpps;
  p.page_size = ps;
  p.softmax_scale = static_cast<float>(scale);
  p.max_seq_len = max_seq_len;
  p.workspace = dws.get();
  p.workspace_bytes = ws;
  if (c.prefill)
    launch_mla_prefill(p, nullptr);
  else
    decode(p, nullptr, kernel);
  WS_CUDA_CHECK(cudaDeviceSynchronize());

  auto outb = dout.download();
  std::vector<float> out(outb.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = __bfloat162float(outb[i]);
  auto lse = dlse.download();
  const double err = rel_l2(out, ref);
  EXPECT_LT(err, 1e-2) << "heads " << H << " page " << ps << " tokens " << T << " kernel v"
                       << 3 + static_cast<int>(kernel);
  double lse_err = 0;
  for (size_t i = 0; i < lse.size(); ++i)
    lse_err = std::max(lse_err, std::isfinite(lse[i]) ? std::abs(lse[i] - ref_lse[i]) : INFINITY);
  EXPECT_LT(lse_err, 2e-2) << "heads " << H << " page " << ps;
}

// A 3-token decode captured in a CUDA graph and replayed twice (below).
void graph_case(int64_t H, MlaDecodeKernel kernel, int64_t ps = 16);

std::vector<int32_t> ones(size_t n) {
  return std::vector<int32_t>(n, 1);
}

// Decode cases, once per decode kernel.
const char* kernel_name(MlaDecodeKernel k) {
  return k == MlaDecodeKernel::kV6   ? "v6"
         : k == MlaDecodeKernel::kV5 ? "v5"
         : k == MlaDecodeKernel::kV4 ? "v4"
                                     : "v3";
}
class MlaDecode : public ::testing::TestWithParam<MlaDecodeKernel> {};

TEST_P(MlaDecode, MixedLengthsPageSizes) {
  WS_REQUIRE_GPU();
  const std::vector<int32_t> lens = {1, 7, 64, 65, 130, 333, 1000, 2049};
  uint64_t seed = 100;
  for (int64_t heads : {2, 16})
    for (int64_t ps : {1, 16, 64})
      run_case({heads, ps, lens, ones(lens.size()), false, seed += 7}, GetParam());
}

TEST_P(MlaDecode, ManyHeads) {
  WS_REQUIRE_GPU();
  run_case({128, 64, {5, 300, 1500, 77}, ones(4), false, 301}, GetParam());
  run_case({64, 16, {1, 63, 64, 65, 129, 700}, ones(6), false, 305}, GetParam());
  run_case({192, 64, {3, 2000}, ones(2), false, 306}, GetParam());
  run_case({128, 16, {4097}, ones(1), false, 302}, GetParam());  // long single sequence: splits
  run_case({40, 1, {19, 250, 129}, ones(3), false, 303}, GetParam());  // heads not a block multiple
  run_case({16, 24, {50, 333}, ones(2), false, 304}, GetParam());  // page size not a power of two
}

// v5's per-thread output stores (taken when the output is not 16-byte aligned; the default
// stages rows in shared memory and bulk-copies them), with and without KV splits.
TEST(MlaDecodeV5, PerThreadStoresWithoutBulkCopies) {
  WS_REQUIRE_GPU();
  set_mla_v5_bulk_store(false);
  run_case({128, 64, {5, 300, 1500, 77}, ones(4), false, 311}, MlaDecodeKernel::kV5);
  run_case({128, 16, {4097}, ones(1), false, 312}, MlaDecodeKernel::kV5);  // splits
  set_mla_v5_bulk_store(true);
}

// v6 (query in registers, TMA tiles) where it runs: pages of 32 and 64 rows, lengths around the
// 32-row tile, NaN in the cache rows past every sequence's end (the last tile's rows past the end
// come from the page as they are), KV splits, graph replay and the per-thread stores.
TEST(MlaDecodeV6, TilesPagesSplitsAndTails) {
  WS_REQUIRE_GPU();
  const std::vector<int32_t> lens = {1, 31, 32, 33, 63, 64, 65, 200, 1000, 4096 + 17};
  uint64_t seed = 1200;
  for (int64_t ps : {32, 64})
    for (bool nan_tails : {false, true}) {
      Case c{128, ps, lens, ones(lens.size()), false, seed += 7};
      c.nan_tails = nan_tails;
      run_case(c, MlaDecodeKernel::kV6);
    }
  run_case({192, 64, {3, 70, 2000}, ones(3), false, 1249}, MlaDecodeKernel::kV6);  // 3 blocks
  Case one{128, 64, {4096 + 17}, ones(1), false, 1250};  // one token: many splits
  one.nan_tails = true;
  run_case(one, MlaDecodeKernel::kV6);
  Case cap{64, 32, {3, 40, 200}, ones(3), false, 1251, 8000};  // empty splits
  cap.nan_tails = true;
  run_case(cap, MlaDecodeKernel::kV6);
  graph_case(128, MlaDecodeKernel::kV6, 64);
  set_mla_v5_bulk_store(false);
  run_case({128, 64, {5, 300, 1500, 77}, ones(4), false, 1252}, MlaDecodeKernel::kV6);
  run_case({128, 32, {4097}, ones(1), false, 1253}, MlaDecodeKernel::kV6);  // splits
  set_mla_v5_bulk_store(true);
}

TEST_P(MlaDecode, SplitsWithCapacityBound) {
  WS_REQUIRE_GPU();
  // max_seq_len far above the real lengths (a decode graph passes capacity): empty splits.
  run_case({16, 16, {3, 40, 200}, ones(3), false, 401, 8000}, GetParam());
  run_case({4, 64, {1}, ones(1), false, 402, 3000}, GetParam());
}

TEST_P(MlaDecode, RaggedTileBoundaries) {
  WS_REQUIRE_GPU();
  // Lengths around the 32-row (v4) and 48-row (v3) tiles, and a long one past 4096.
  const std::vector<int32_t> lens = {1, 47, 48, 49, 31, 32, 33, 4096 + 17};
  uint64_t seed = 900;
  for (int64_t heads : {1, 2, 16, 128})
    run_case({heads, 16, lens, ones(lens.size()), false, seed += 13}, GetParam());
}

TEST_P(MlaDecode, SingleLongSequence) {
  WS_REQUIRE_GPU();
  for (int64_t heads : {1, 16, 128})
    run_case({heads, 64, {4096 + 17}, ones(1), false, 950 + static_cast<uint64_t>(heads)},
             GetParam());
}

TEST_P(MlaDecode, Batch64Ragged) {
  WS_REQUIRE_GPU();
  // 64 sequences: boundary lengths and random ones; the H=16 batch also holds one past 4096
  // (splits differ per row). Every sequence gets max-length capacity, so only one batch is long.
  std::mt19937_64 g(977);
  std::vector<int32_t> lens = {1, 47, 48, 49, 95, 96, 97};
  while (lens.size() < 64) lens.push_back(static_cast<int32_t>(1 + g() % 300));
  std::shuffle(lens.begin(), lens.end(), g);
  run_case({128, 16, lens, ones(lens.size()), false, 982}, GetParam());
  run_case({2, 1, lens, ones(lens.size()), false, 983}, GetParam());
  lens[37] = 4096 + 17;
  run_case({16, 64, lens, ones(lens.size()), false, 981}, GetParam());
}

TEST(MlaAttention, PrefillPrefixAndChunk) {
  WS_REQUIRE_GPU();
  uint64_t seed = 500;
  for (int64_t heads : {2, 16})
    for (int64_t ps : {1, 16, 64}) {
      // Chunks of odd sizes after cached prefixes, and a fresh prompt (prefix 0).
      run_case({heads, ps, {37, 300, 5, 129}, {37, 61, 3, 64}, true, seed += 11});
    }
  run_case({128, 16, {90, 233}, {23, 41}, true, 551});
  run_case({3, 16, {1, 2, 3, 700}, {1, 2, 1, 150}, true, 552});  // tokens of a CTA span sequences
}

TEST(MlaAttention, PrefillLongPromptSplits) {
  WS_REQUIRE_GPU();
  run_case({16, 64, {2500}, {9}, true, 601});  // few tokens over a long prefix: split-KV path
}

TEST_P(MlaDecode, GraphCaptureReplays) {
  WS_REQUIRE_GPU();
  // Capacity 640 with one 600-token sequence: several splits, so the combine is captured too;
  // 16 heads (v3/v4 kernels) and 128 (v5's wgmma kernel).
  for (const int64_t H : {16, 128}) graph_case(H, GetParam());
}

void graph_case(int64_t H, MlaDecodeKernel kernel, int64_t ps) {
  const int64_t T = 3, mpps = 640 / ps;
  std::vector<int32_t> table(T * mpps), lens = {10, 100, 600}, seq = {0, 1, 2}, pos = {9, 99, 599};
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937_64(7));
  std::vector<float> qf = randn(T * H * kMlaRowDim, 701),
                     kvf = randn(T * mpps * ps * kMlaRowDim, 702);
  auto qb = to_bf16(qf);
  auto kvb = to_bf16(kvf);
  std::vector<double> ref, ref_lse;
  mla_attention_ref(qf, kvf, table, lens, seq, pos, H, mpps, ps, 0.1, ref, ref_lse);
  DeviceBuffer<__nv_bfloat16> dq(qb.size()), dkv(kvb.size()), dout(T * H * kMlaLatentDim);
  DeviceBuffer<int32_t> dt(table.size()), dl(T), ds(T), dp(T);
  dq.upload(qb);
  dkv.upload(kvb);
  dt.upload(table);
  dl.upload(lens);
  ds.upload(seq);
  dp.upload(pos);
  const size_t ws = mla_workspace_bytes(T, H, mpps * ps);
  DeviceBuffer<unsigned char> dws(std::max<size_t>(ws, 1));
  MlaAttentionParams p{dq.get(), dkv.get(), dt.get(), dl.get(), ds.get(), dp.get(), dout.get()};
  p.num_tokens = T;
  p.num_seqs = T;
  p.num_heads = H;
  p.max_pages_per_seq = mpps;
  p.page_size = ps;
  p.softmax_scale = 0.1f;
  p.max_seq_len = mpps * ps;
  p.workspace = dws.get();
  p.workspace_bytes = ws;
  cudaStream_t st;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  {
    test::CapturedGraph graph(
        st, [&] { decode(p, st, kernel); }, cudaStreamCaptureModeGlobal);
    for (int rep = 0; rep < 2; ++rep) {
      WS_CUDA_CHECK(cudaMemsetAsync(dout.get(), 0xFF, dout.bytes(), st));
      graph.launch();
      auto ob = dout.download();
      std::vector<float> o(ob.size());
      for (size_t i = 0; i < o.size(); ++i) o[i] = __bfloat162float(ob[i]);
      EXPECT_LT(rel_l2(o, ref), 1e-2) << "replay " << rep << ", heads " << H;
    }
  }
  WS_CUDA_CHECK(cudaStreamDestroy(st));
}

TEST_P(MlaDecode, RejectsMissingWorkspace) {
  WS_REQUIRE_GPU();
  DeviceBuffer<__nv_bfloat16> d(kMlaRowDim * 128);
  DeviceBuffer<int32_t> di(64);
  MlaAttentionParams p{d.get(), d.get(), di.get(), di.get(), di.get(), di.get(), d.get()};
  p.num_tokens = 1;
  p.num_seqs = 1;
  p.num_heads = 16;
  p.max_pages_per_seq = 64;
  p.page_size = 64;
  p.max_seq_len = 4096;  // one token over 4k: the plan splits, so a workspace is required
  ASSERT_GT(mla_workspace_bytes(1, 16, 4096), 0u);
  EXPECT_ANY_THROW(launch_mla_decode(p, nullptr, GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Kernels, MlaDecode,
                         ::testing::Values(MlaDecodeKernel::kV3, MlaDecodeKernel::kV4,
                                           MlaDecodeKernel::kV5, MlaDecodeKernel::kV6),
                         [](const ::testing::TestParamInfo<MlaDecodeKernel>& i) {
                           return std::string(kernel_name(i.param));
                         });

// Host only: which batches launch_mla_decode(kV5) gives the wgmma kernel.
TEST(MlaAttention, WgmmaDecodeOnlyForWideBatches) {
  MlaAttentionParams p{};
  p.num_heads = 128;
  p.num_tokens = 1;
  EXPECT_TRUE(mla_decode_wgmma_supported(p));
  EXPECT_FALSE(mla_decode_wgmma_preferred(p));
  p.num_tokens = 16;
  EXPECT_TRUE(mla_decode_wgmma_preferred(p));
  p.num_heads = 64;
  EXPECT_FALSE(mla_decode_wgmma_preferred(p));
  p.num_tokens = 32;
  EXPECT_TRUE(mla_decode_wgmma_preferred(p));
  p.num_heads = 16;
  p.num_tokens = 4096;
  EXPECT_FALSE(mla_decode_wgmma_supported(p));
  EXPECT_FALSE(mla_decode_wgmma_preferred(p));
}

TEST(MlaAttention, DecodeV4RejectsMisalignedCache) {
  WS_REQUIRE_GPU();
  DeviceBuffer<__nv_bfloat16> d(kMlaRowDim * 128);
  DeviceBuffer<int32_t> di(64);
  // cache base 2 bytes past a 16-byte boundary: v4's bulk row copies cannot take it.
  MlaAttentionParams p{d.get(), d.get() + 1, di.get(), di.get(), di.get(), di.get(), d.get()};
  p.num_tokens = 1;
  p.num_seqs = 1;
  p.num_heads = 16;
  p.max_pages_per_seq = 1;
  p.page_size = 64;
  p.max_seq_len = 64;
  EXPECT_ANY_THROW(launch_mla_decode(p, nullptr, MlaDecodeKernel::kV4));
}

TEST(MlaKvStore, ScattersRowsToSlots) {
  WS_REQUIRE_GPU();
  const int64_t T = 37, slots = 100;
  std::vector<float> rf = randn(T * kMlaRowDim, 801), cf = randn(slots * kMlaRowDim, 802);
  auto rb = to_bf16(rf);
  auto cb = to_bf16(cf);
  std::vector<int32_t> perm(slots);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(803));
  std::vector<int32_t> map(perm.begin(), perm.begin() + T);
  map[5] = -1;  // padding token
  DeviceBuffer<__nv_bfloat16> drows(rb.size()), dcache(cb.size());
  DeviceBuffer<int32_t> dmap(T);
  drows.upload(rb);
  dcache.upload(cb);
  dmap.upload(map);
  launch_mla_kv_store({drows.get(), dmap.get(), dcache.get(), T, slots}, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  auto got = dcache.download();
  std::vector<float> want = cf;
  for (int64_t t = 0; t < T; ++t)
    if (map[t] >= 0)
      std::copy(rf.begin() + t * kMlaRowDim, rf.begin() + (t + 1) * kMlaRowDim,
                want.begin() + map[t] * kMlaRowDim);
  int64_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) bad += __bfloat162float(got[i]) != want[i];
  EXPECT_EQ(bad, 0);
}

}  // namespace

// gtest prints the parameter through ADL: "GetParam() = v4" in test names.
void PrintTo(MlaDecodeKernel k, std::ostream* os) {
  *os << kernel_name(k);
}

}  // namespace wideserve::cuda
