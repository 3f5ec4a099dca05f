// GPU sampling against the CPU rules: greedy ties, bans, penalties (bit-exact processed logits,
// also against engine::sample), the support of top_k/top_p/min_p, a chi-square test of the
// drawn frequencies and batch invariance of seeded draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gpu_test_util.h"
#include "backend/cuda/sampling/sampling.h"
#include "backend/cuda/sampling/sampling_ref.h"
#include "engine/sampler.h"

namespace wideserve::cuda {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A host batch; CSR lists per row.
struct Batch {
  int64_t vocab = 0;
  std::vector<float> logits;
  std::vector<SamplingRowParams> params;
  std::vector<std::vector<int32_t>> pen_tok, pen_cnt, banned;
  bool logprob = false;

  int64_t rows() const { return static_cast<int64_t>(params.size()); }
  void add(const std::vector<float>& row, const SamplingRowParams& p,
           std::vector<int32_t> toks = {}, std::vector<int32_t> cnts = {},
           std::vector<int32_t> ban = {}) {
    logits.insert(logits.end(), row.begin(), row.end());
    params.push_back(p);
    pen_tok.push_back(std::move(toks));
    pen_cnt.push_back(std::move(cnts));
    banned.push_back(std::move(ban));
  }
  std::span<const float> row(int64_t r) const {
    return {logits.data() + r * vocab, static_cast<size_t>(vocab)};
  }
};

struct Result {
  std::vector<int32_t> ids;
  std::vector<float> logprob;
  std::vector<float> processed;
};

void csr(const std::vector<std::vector<int32_t>>& lists, std::vector<int32_t>* flat,
         std::vector<int32_t>* off) {
  off->assign(1, 0);
  for (const auto& l : lists) {
    flat->insert(flat->end(), l.begin(), l.end());
    off->push_back(static_cast<int32_t>(flat->size()));
  }
  if (flat->empty()) flat->push_back(0);  // keep the buffer non-null
}

Result run_gpu(const Batch& b) {
  const int64_t R = b.rows();
  std::vector<int32_t> pt, pc, po, bt, bo;
  csr(b.pen_tok, &pt, &po);
  csr(b.pen_cnt, &pc, &po);
  csr(b.banned, &bt, &bo);
  DeviceBuffer<float> logits(b.logits.size());
  logits.upload(b.logits);
  DeviceBuffer<SamplingRowParams> params(R);
  params.upload(b.params);
  DeviceBuffer<int32_t> d_pt(pt.size()), d_pc(pc.size()), d_po(po.size()), d_bt(bt.size()),
      d_bo(bo.size());
  d_pt.upload(pt);
  d_pc.upload(pc);
  d_po.upload(po);
  d_bt.upload(bt);
  d_bo.upload(bo);
  DeviceBuffer<float> scratch(pt.size()), lp(R);
  DeviceBuffer<int32_t> ids(R);
  WS_CUDA_CHECK(cudaMemset(ids.get(), 0xFF, ids.bytes()));  // -1
  WS_CUDA_CHECK(cudaMemset(lp.get(), 0xFF, lp.bytes()));    // NaN
  SampleParams p;
  p.logits = logits.get();
  p.rows = R;
  p.vocab = b.vocab;
  p.params = params.get();
  p.penalty_tokens = d_pt.get();
  p.penalty_counts = d_pc.get();
  p.penalty_offsets = d_po.get();
  p.banned_tokens = d_bt.get();
  p.banned_offsets = d_bo.get();
  p.penalty_scratch = scratch.get();
  p.out_ids = ids.get();
  p.out_logprob = b.logprob ? lp.get() : nullptr;
  launch_sample(p, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  return {ids.download(), lp.download(), logits.download()};
}

SamplingRowParams sampled(float t, uint64_t seed, uint64_t step) {
  return {t, 1.0f, 0.0f, -1, 0.0f, 0.0f, 1.0f, seed, step};
}
SamplingRowParams greedy() {
  return sampled(0.0f, 0, 0);
}

// Processed logits of one row, as the reference computes them.
std::vector<float> processed_ref(const Batch& b, int64_t r) {
  std::vector<float> row(b.row(r).begin(), b.row(r).end());
  process_logits_ref(row, b.params[r], b.pen_tok[r], b.pen_cnt[r], b.banned[r]);
  return row;
}

TEST(CudaSampling, GreedyIsFirstArgmaxWithTiesNanAndInf) {
  WS_REQUIRE_GPU();
  for (int64_t V : {1, 7, 1000, 4099, 129280, 163840}) {
    Batch b;
    b.vocab = V;
    b.logprob = true;
    for (int r = 0; r < 6; ++r) {
      auto row = test::randn(V, 100 * V + r, 3.0f);
      if (V > 10) {
        const int64_t a = (r * 977) % V, c = (r * 131 + 5) % V;
        row[std::max(a, c)] = row[std::min(a, c)] = 50.0f;  // a tie: the lower index wins
        row[(r * 31 + 3) % V] = std::numeric_limits<float>::quiet_NaN();
      }
      if (r == 5 && V > 10) row[V - 1] = std::numeric_limits<float>::infinity();
      b.add(row, greedy());
    }
    const Result out = run_gpu(b);
    for (int64_t r = 0; r < b.rows(); ++r) {
      const auto row = b.row(r);
      int64_t best = -1;
      for (int64_t i = 0; i < V; ++i)
        if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best])) best = i;
      EXPECT_EQ(out.ids[r], best) << "V " << V << " row " << r;
      EXPECT_NEAR(out.logprob[r], raw_logprob_ref(row, out.ids[r]), 1e-4) << "V " << V;
    }
  }
}

TEST(CudaSampling, TopK1IsGreedy) {
  WS_REQUIRE_GPU();
  Batch b;
  b.vocab = 50000;
  for (int r = 0; r < 32; ++r) {
    auto p = sampled(1.5f, 1000 + r, r);
    p.top_k = 1;
    auto row = test::randn(b.vocab, 7 + r, 2.0f);
    row[(r * 4999) % b.vocab] = row[(r * 4999 + 17) % b.vocab] = 20.0f;  // tied max
    b.add(row, p);
  }
  const Result out = run_gpu(b);
  for (int64_t r = 0; r < b.rows(); ++r) {
    const auto row = b.row(r);
    EXPECT_EQ(out.ids[r], std::max_element(row.begin(), row.end()) - row.begin());
  }
}

TEST(CudaSampling, BannedTokensAreNeverDrawnAndAllBannedGivesMinusOne) {
  WS_REQUIRE_GPU();
  Batch b;
  b.vocab = 40;
  std::vector<float> row(40);
  for (int i = 0; i < 40; ++i) row[i] = (i % 5 == 0) ? 3.0f : 0.1f * (i % 7);
  const std::vector<int32_t> ban = {0, 5, 10, 15, 20, 25, 30, 35, 5};  // the heavy ones, a dup
  for (int r = 0; r < 4000; ++r) b.add(row, sampled(1.0f, 9, r), {}, {}, ban);
  std::vector<int32_t> all(40);
  for (int i = 0; i < 40; ++i) all[i] = i;
  b.add(row, sampled(1.0f, 9, 0), {}, {}, all);
  b.add(row, greedy(), {}, {}, ban);
  const Result out = run_gpu(b);
  std::set<int32_t> drawn;
  for (int r = 0; r < 4000; ++r) {
    ASSERT_GE(out.ids[r], 0);
    EXPECT_NE(out.ids[r] % 5, 0) << "banned token " << out.ids[r];
    drawn.insert(out.ids[r]);
  }
  EXPECT_EQ(drawn.size(), 32u);  // every allowed token shows up in 4000 draws
  EXPECT_EQ(out.ids[4000], -1);
  EXPECT_NE(out.ids[4001] % 5, 0);
}

// Penalised rows: the processed logits equal the reference and engine::sample's in-place row bit
// for bit; the logprob is the raw one, as engine::sample reports it.
TEST(CudaSampling, PenaltiesMatchCpuSamplerExactly) {
  WS_REQUIRE_GPU();
  const int64_t V = 3001;
  Batch b;
  b.vocab = V;
  b.logprob = true;
  std::vector<engine::SamplingParams> eng;
  std::vector<engine::SamplerState> states;
  for (int r = 0; r < 8; ++r) {
    engine::SamplingParams sp;
    sp.temperature = r % 2 ? 0.0f : 0.9f;
    sp.repetition_penalty = 1.0f + 0.15f * (r % 4);
    sp.frequency_penalty = 0.3f * (r % 3) - 0.2f;
    sp.presence_penalty = r % 2 ? 0.7f : -0.4f;
    sp.top_logprobs = 0;
    sp.seed = 77 + r;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 200; ++i) prompt.push_back((i * 37 + r * 11) % V);
    engine::SamplerState st(sp, prompt, 0);
    for (int i = 0; i < 60; ++i) st.append((i * i * 13 + r) % V);
    // The CSR the engine builds: distinct seen tokens with their generated counts.
    std::vector<int32_t> toks, cnts;
    for (int32_t t : st.seen_tokens()) {
      toks.push_back(t);
      auto it = st.generated_counts().find(t);
      cnts.push_back(it == st.generated_counts().end() ? 0 : it->second);
    }
    std::vector<int32_t> ban = {1, 2, 3, toks[0]};
    auto row = test::randn(V, 4242 + r, 2.5f);
    SamplingRowParams p{sp.temperature,
                        sp.top_p,
                        sp.min_p,
                        sp.top_k,
                        sp.presence_penalty,
                        sp.frequency_penalty,
                        sp.repetition_penalty,
                        st.seed(),
                        static_cast<uint64_t>(st.num_generated())};
    b.add(row, p, toks, cnts, ban);
    eng.push_back(sp);
    states.push_back(st);
  }
  const Result out = run_gpu(b);
  int same_token = 0;
  for (int64_t r = 0; r < b.rows(); ++r) {
    const auto ref = processed_ref(b, r);
    std::vector<float> cpu(b.row(r).begin(), b.row(r).end());
    engine::SampleResult res = engine::sample(cpu, eng[r], states[r], b.banned[r]);
    for (int64_t i = 0; i < V; ++i) {
      ASSERT_EQ(std::memcmp(&out.processed[r * V + i], &ref[i], 4), 0) << "row " << r << " " << i;
      ASSERT_EQ(std::memcmp(&cpu[i], &ref[i], 4), 0) << "cpu row " << r << " token " << i;
    }
    EXPECT_NEAR(out.logprob[r], raw_logprob_ref(b.row(r), out.ids[r]), 1e-4);
    if (res.token == out.ids[r]) {
      ++same_token;
      EXPECT_NEAR(out.logprob[r], res.logprob, 1e-4);
    }
    if (eng[r].temperature == 0.0f) EXPECT_EQ(res.token, out.ids[r]) << "greedy row " << r;
  }
  EXPECT_GE(same_token, 4);
}

// The uniform of (seed, step) is the CPU sampler's; with neither top_k nor top_p both draw in index
// order, so the tokens agree except where float rounding moves a boundary.
TEST(CudaSampling, TemperatureOnlyDrawsAgreeWithCpuSampler) {
  WS_REQUIRE_GPU();
  engine::SamplingParams sp;
  sp.temperature = 0.8f;
  sp.seed = 123;
  engine::SamplerState st(sp, {}, 0);
  for (uint64_t k = 0; k < 100; ++k) EXPECT_EQ(sample_uniform(123, k), st.uniform(k));
  const int64_t V = 129280;
  Batch b;
  b.vocab = V;
  const auto row = test::randn(V, 99, 2.0f);
  for (int r = 0; r < 400; ++r) b.add(row, sampled(0.8f, 123, r));
  const Result out = run_gpu(b);
  int agree = 0;
  for (int r = 0; r < 400; ++r) {
    engine::SamplerState s(sp, {}, 0);
    for (int k = 0; k < r; ++k) s.append(0);  // step r
    std::vector<float> cpu = row;
    agree += engine::sample(cpu, sp, s).token == out.ids[r];
  }
  EXPECT_GE(agree, 392) << "of 400";
}

struct Case {
  const char* name;
  float temperature, top_p, min_p;
  int32_t top_k;
};

// 20k draws of one row (one per step) against the filtered softmax: exact support, and a
// chi-square statistic under its 1e-6 tail (the draws are deterministic, so this never flakes).
TEST(CudaSampling, DrawsFollowTheFilteredSoftmax) {
  WS_REQUIRE_GPU();
  const int64_t V = 61;
  const int kDraws = 20000;
  std::vector<float> row(V);
  for (int64_t i = 0; i < V; ++i) row[i] = 2.0f * std::sin(0.7f * i) + 0.03f * i;
  row[17] = kNegInf;
  for (const Case& c : {Case{"temperature", 1.3f, 1.0f, 0.0f, -1},
                        Case{"top_k", 0.9f, 1.0f, 0.0f, 12}, Case{"top_p", 0.7f, 0.8f, 0.0f, 0},
                        Case{"min_p", 1.0f, 1.0f, 0.1f, -1}, Case{"all", 1.1f, 0.9f, 0.05f, 20}}) {
    Batch b;
    b.vocab = V;
    for (int r = 0; r < kDraws; ++r)
      b.add(row, {c.temperature, c.top_p, c.min_p, c.top_k, 0, 0, 1, 2024, uint64_t(r)});
    const Result out = run_gpu(b);
    const auto prob = sample_distribution_ref(row, b.params[0]);
    std::vector<int64_t> hits(V, 0);
    for (int r = 0; r < kDraws; ++r) {
      ASSERT_GE(out.ids[r], 0);
      ++hits[out.ids[r]];
    }
    double chi2 = 0;
    int support = 0;
    for (int64_t i = 0; i < V; ++i) {
      if (prob[i] == 0.0) {
        EXPECT_EQ(hits[i], 0) << c.name << ": token " << i << " is outside the support";
        continue;
      }
      ++support;
      EXPECT_GT(hits[i], 0) << c.name << ": token " << i << " (p " << prob[i] << ") never drawn";
      const double e = prob[i] * kDraws;
      chi2 += (hits[i] - e) * (hits[i] - e) / e;
    }
    const double df = support - 1;
    // Wilson-Hilferty: the 1 - 1e-6 quantile of chi-square(df) ~ df (1 - 2/(9df) + 4.75
    // sqrt(2/(9df)))^3.
    const double q = df * std::pow(1 - 2 / (9 * df) + 4.75 * std::sqrt(2 / (9 * df)), 3);
    EXPECT_LT(chi2, q) << c.name << ": chi2 " << chi2 << " df " << df;
    if (c.top_k > 0) EXPECT_LE(support, c.top_k) << c.name;
  }
}

// Ties at the top_k / top_p boundary keep the lowest indices, on a full-size row.
TEST(CudaSampling, TiesAtTheCutKeepLowestIndices) {
  WS_REQUIRE_GPU();
  const int64_t V = 163840;
  auto row = test::randn(V, 5, 1.0f);
  for (auto& x : row) x -= 30.0f;  // negligible mass outside the tied tokens
  std::vector<int32_t> tied;
  for (int i = 0; i < 10; ++i) tied.push_back(static_cast<int32_t>(1000 + i * 15000));
  for (int32_t t : tied) row[t] = 5.0f;
  Batch b;
  b.vocab = V;
  for (int r = 0; r < 3000; ++r) {
    auto p = sampled(1.0f, 31, r);
    if (r % 2 == 0)
      p.top_k = 7;  // keeps tied[0..6]
    else
      p.top_p = 0.35f;  // each tied token holds ~0.1 of the mass: keeps tied[0..3]
    b.add(row, p);
  }
  const Result out = run_gpu(b);
  std::set<int32_t> by_k, by_p;
  for (int r = 0; r < 3000; ++r) (r % 2 == 0 ? by_k : by_p).insert(out.ids[r]);
  EXPECT_EQ(by_k, std::set<int32_t>(tied.begin(), tied.begin() + 7));
  EXPECT_EQ(by_p, std::set<int32_t>(tied.begin(), tied.begin() + 4));
}

// Large-vocab support: every draw lies in the reference support of top_k + top_p + min_p.
TEST(CudaSampling, LargeVocabSupportMatchesReference) {
  WS_REQUIRE_GPU();
  const int64_t V = 129280;
  const auto row = test::randn(V, 77, 3.0f);
  for (const Case& c : {Case{"top_k", 1.0f, 1.0f, 0.0f, 50}, Case{"top_p", 0.6f, 0.9f, 0.0f, 0},
                        Case{"min_p", 0.7f, 1.0f, 0.2f, 0}, Case{"all", 0.8f, 0.95f, 0.01f, 40}}) {
    Batch b;
    b.vocab = V;
    for (int r = 0; r < 2000; ++r)
      b.add(row, {c.temperature, c.top_p, c.min_p, c.top_k, 0, 0, 1, 8, uint64_t(r)});
    const Result out = run_gpu(b);
    const auto prob = sample_distribution_ref(row, b.params[0]);
    int64_t support = 0;
    for (double x : prob) support += x > 0;
    std::set<int32_t> drawn;
    for (int r = 0; r < 2000; ++r) {
      ASSERT_GE(out.ids[r], 0);
      EXPECT_GT(prob[out.ids[r]], 0.0) << c.name << ": token " << out.ids[r];
      drawn.insert(out.ids[r]);
    }
    EXPECT_GE(static_cast<int64_t>(drawn.size()), std::min<int64_t>(support, 10)) << c.name;
  }
}

// A seeded row gives the same token wherever it sits in whatever batch; other steps differ.
TEST(CudaSampling, SeededDrawsAreBatchInvariant) {
  WS_REQUIRE_GPU();
  const int64_t V = 32000;
  const auto row = test::randn(V, 3, 0.5f);  // flat: many plausible tokens
  SamplingRowParams p = sampled(1.0f, 0xC0FFEE, 7);
  p.top_p = 0.95f;
  p.top_k = 500;
  auto token_at = [&](int64_t batch, int64_t pos, uint64_t step) {
    Batch b;
    b.vocab = V;
    for (int64_t r = 0; r < batch; ++r) {
      SamplingRowParams q = p;
      q.step = step;
      if (r == pos)
        b.add(row, q);
      else
        b.add(test::randn(V, 1000 + r, 2.0f), sampled(0.9f, r, r), {1, 2}, {0, 1}, {3});
    }
    return run_gpu(b).ids[pos];
  };
  const int32_t t = token_at(1, 0, 7);
  EXPECT_EQ(token_at(9, 5, 7), t);
  EXPECT_EQ(token_at(130, 100, 7), t);
  std::set<int32_t> steps;
  for (uint64_t s = 0; s < 20; ++s) steps.insert(token_at(3, 1, s));
  EXPECT_GE(steps.size(), 10u);
}

}  // namespace
}  // namespace wideserve::cuda
