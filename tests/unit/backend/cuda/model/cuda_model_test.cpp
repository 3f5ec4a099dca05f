// The GPU model against HF transformers' reference logits (tests/fixtures/tiny-*), and the step
// contract the engine relies on: decode from the cache, batching, chunked prefill.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cuda/gpu_test_util.h"
#include "backend/cuda/model/cuda_model.h"
#include "common/check.h"
#include "model/reference_fixtures.h"

namespace wideserve::cuda {
namespace {

using model::SequenceInput;

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Per logits row (one token) relative errors. bf16 rounding can flip a near-tied top-k expert
// choice for a token, which changes that token's row a lot while the others stay close; so the
// checks bound the median row and the share of rows over a looser limit.
struct RowErrors {
  double median = 0, worst = 0, frac_over = 0;
};
RowErrors row_errors(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab,
                     double limit) {
  std::vector<double> e;
  for (size_t r = 0; r * vocab < a.size(); ++r) {
    std::vector<float> x(a.begin() + r * vocab, a.begin() + (r + 1) * vocab);
    std::vector<float> y(b.begin() + r * vocab, b.begin() + (r + 1) * vocab);
    e.push_back(rel_err(x, y));
  }
  RowErrors out;
  std::vector<double> s = e;
  std::sort(s.begin(), s.end());
  out.median = s[s.size() / 2];
  out.worst = s.back();
  out.frac_over =
      static_cast<double>(std::count_if(s.begin(), s.end(), [&](double v) { return v > limit; })) /
      static_cast<double>(s.size());
  return out;
}

bool is_fp8(const std::string& dir) {
  return dir.find("fp8") != std::string::npos;
}
// FP8 fixtures also quantize activations (1x128 groups, e4m3) where the reference does not: on
// these random tiny models that moves logits by 7-18% (row median, measured on the H200) and flips
// more expert choices. The strict check of the FP8 checkpoints is the dequantized model against
// HF (Fp8PathAgreesWithItsBf16Dequantization); the FP8 GEMMs themselves are checked against
// float64 in tests/unit/backend/cuda/gemm and moe.
double median_tol(const std::string& dir) {
  return is_fp8(dir) ? 0.25 : 0.02;
}
double row_limit(const std::string& dir) {
  return is_fp8(dir) ? 0.5 : 0.06;
}

// The share of far-off rows allowed: `floor`, or HF transformers' own share for the same numerics
// (bf16, or bf16 with the FP8 activation quantization emulated; hf_sensitivity.json) plus 10
// points when that is larger. tiny-fp8-dslayout's routing is that sensitive: HF's own bf16 run
// puts 19% of one prompt's rows over 6%.
double frac_bound(double floor, double hf_frac) {
  return std::max(floor, hf_frac + 0.1);
}

void expect_close(const std::vector<float>& got, const testing::ReferenceCase& c,
                  const std::string& dir, const std::string& what) {
  const std::vector<float>& ref = c.logits;
  ASSERT_EQ(got.size(), ref.size()) << what;
  const RowErrors e = row_errors(got, ref, c.vocab, row_limit(dir));
  const double bound = frac_bound(0.1, is_fp8(dir) ? c.hf_fp8_frac_over : c.hf_bf16_frac_over);
  std::printf(
      "[gpu-fixture] %s %s: whole %.2e, row median %.2e, worst %.2e, over %.2f: %.0f%% (bound "
      "%.0f%%)\n",
      dir.c_str(), what.c_str(), rel_err(got, ref), e.median, e.worst, row_limit(dir),
      100 * e.frac_over, 100 * bound);
  EXPECT_LT(e.median, median_tol(dir)) << what;
  EXPECT_LE(e.frac_over, bound) << what;
}

class CudaFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  // The fixtures' pool and step sizes (every test starts from these).
  static CudaModelOptions options() {
    CudaModelOptions o;
    o.page_size = 16;
    o.num_pages = 256;
    o.max_step_tokens = 512;
    o.max_seqs = 16;
    return o;
  }
  std::unique_ptr<CudaModel> load() { return CudaModel::load(GetParam(), options()); }

 public:
  static std::vector<int32_t> pages(int32_t first, int64_t tokens) {
    std::vector<int32_t> p((tokens + 15) / 16);
    // Scattered, descending page ids: catches page-table indexing bugs.
    for (size_t i = 0; i < p.size(); ++i) p[i] = first + static_cast<int32_t>(2 * (p.size() - i));
    return p;
  }
};

TEST_P(CudaFixtureTest, PrefillLogitsMatchHfReference) {
  WS_REQUIRE_GPU();
  auto m = load();
  auto cases = testing::load_reference(GetParam());
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    auto pg = pages(0, static_cast<int64_t>(c.prompt.size()));
    SequenceInput s{c.prompt, 0, pg, true};
    std::vector<float> out;
    m->forward({&s, 1}, &out);
    expect_close(out, c, GetParam(),
                 "case " + std::to_string(i) + " (" + std::to_string(c.prompt.size()) + " tokens)");
  }
}

TEST_P(CudaFixtureTest, GreedyDecodeMatchesReferenceWhereMarginIsClear) {
  WS_REQUIRE_GPU();
  auto m = load();
  for (const auto& c : testing::load_reference(GetParam())) {
    std::vector<int32_t> seq = c.prompt;
    const int64_t total = static_cast<int64_t>(c.prompt.size() + c.greedy.size());
    auto pg = pages(1, total);
    std::vector<int32_t> ids;
    SequenceInput s{seq, 0, pg, false};
    m->forward_greedy({&s, 1}, &ids);
    for (size_t k = 0; k < c.greedy.size(); ++k) {
      if (ids[0] != c.greedy[k]) {
        // A flip is only allowed at a near-tie; after it the sequences diverge.
        EXPECT_LT(c.margins[k], is_fp8(GetParam()) ? 1.0 : 0.1)
            << "step " << k << ": got " << ids[0] << " want " << c.greedy[k];
        break;
      }
      std::vector<int32_t> next{ids[0]};
      SequenceInput d{next, static_cast<int64_t>(c.prompt.size() + k), pg, false};
      m->forward_greedy({&d, 1}, &ids);
    }
  }
}

// All reference prompts decode together, batch padded to a graph bucket: greedy tokens through
// captured CUDA graphs follow the reference until a flip, which is allowed only where the
// reference's margin is below `flip_margin`. Returns the tokens that matched.
int graph_decode_matches(CudaModel& m, const std::vector<testing::ReferenceCase>& cases,
                         float flip_margin) {
  const size_t n = cases.size();
  std::vector<std::vector<int32_t>> pg(n), next(n, std::vector<int32_t>(1));
  std::vector<SequenceInput> in;
  for (size_t i = 0; i < n; ++i) {
    pg[i] = CudaFixtureTest::pages(static_cast<int32_t>(40 * i),
                                   cases[i].prompt.size() + cases[i].greedy.size());
    in.push_back({cases[i].prompt, 0, pg[i], false});
  }
  std::vector<int32_t> ids;
  m.forward_greedy(in, &ids);  // prefill: eager
  int compared = 0;
  // ids holds one token per sequence of the last step, in `order`.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (size_t k = 0; k < cases[0].greedy.size(); ++k) {
    std::vector<SequenceInput> step;
    std::vector<size_t> now;
    for (size_t j = 0; j < order.size(); ++j) {
      const size_t i = order[j];
      if (ids[j] != cases[i].greedy[k]) {
        EXPECT_LT(cases[i].margins[k], flip_margin) << "prompt " << i << " step " << k;
        continue;
      }
      ++compared;
      if (k + 1 >= cases[i].greedy.size()) continue;
      next[i][0] = ids[j];
      step.push_back({next[i], static_cast<int64_t>(cases[i].prompt.size() + k), pg[i], false});
      now.push_back(i);
    }
    if (step.empty()) break;
    order = now;
    m.forward_greedy(step, &ids);
  }
  return compared;
}

TEST_P(CudaFixtureTest, BatchedGreedyDecodeThroughCudaGraphs) {
  WS_REQUIRE_GPU();
  CudaModelOptions o = options();
  o.cuda_graph_max_bs = 8;
  const auto cases = testing::load_reference(GetParam());
  const int n = static_cast<int>(cases.size());
  auto m = CudaModel::load(GetParam(), o);
  const int matched = graph_decode_matches(*m, cases, is_fp8(GetParam()) ? 1.0f : 0.1f);
  std::printf("[gpu-fixture] %s graph decode: %d reference tokens matched\n", GetParam().c_str(),
              matched);
  if (!is_fp8(GetParam())) {
    EXPECT_GT(matched, n);  // decode steps ran past the first token
    return;
  }
  // FP8 activations may flip every first token where the reference's margins are < 0.1 (they do
  // on tiny-fp8-dslayout: so does HF with the same quantization emulated), leaving no decode step
  // to compare; the same graphs over the dequantized weights must follow the reference. Where HF's
  // own bf16 run leaves the reference at a margin >= 0.1 (tiny-fp8-dslayout: 0.11, its routing
  // flips under bf16 rounding), bf16 flips are allowed up to 0.5.
  float bf16_flip = 0.1f;
  for (const auto& c : cases)
    if (c.hf_bf16_greedy_follows >= 0 &&
        c.hf_bf16_greedy_follows < static_cast<int64_t>(c.greedy.size()) &&
        c.margins[c.hf_bf16_greedy_follows] >= 0.1f)
      bf16_flip = 0.5f;
  o.dequantize_fp8 = true;
  auto bf = CudaModel::load(GetParam(), o);
  EXPECT_GT(graph_decode_matches(*bf, cases, bf16_flip), n);
}

TEST_P(CudaFixtureTest, BatchedAndChunkedEqualSeparateRuns) {
  WS_REQUIRE_GPU();
  auto m = load();
  auto cases = testing::load_reference(GetParam());
  // Batch: every prompt at once, all logits.
  std::vector<std::vector<int32_t>> pgs;
  std::vector<SequenceInput> in;
  for (size_t i = 0; i < cases.size(); ++i)
    pgs.push_back(pages(static_cast<int32_t>(40 * i), cases[i].prompt.size()));
  for (size_t i = 0; i < cases.size(); ++i) in.push_back({cases[i].prompt, 0, pgs[i], true});
  std::vector<float> out;
  m->forward(in, &out);
  size_t at = 0;
  for (const auto& c : cases) {
    std::vector<float> mine(out.begin() + at, out.begin() + at + c.logits.size());
    at += c.logits.size();
    expect_close(mine, c, GetParam(), "batched");
  }
  // Chunked prefill of the longest prompt: chunks of 3 tokens over the cached prefix.
  const auto& big = *std::max_element(cases.begin(), cases.end(), [](auto& a, auto& b) {
    return a.prompt.size() < b.prompt.size();
  });
  auto pg = pages(3, big.prompt.size());
  const int64_t V = big.vocab, n = static_cast<int64_t>(big.prompt.size());
  std::vector<float> chunked;
  for (int64_t s0 = 0; s0 < n; s0 += 3) {
    const int64_t len = std::min<int64_t>(3, n - s0);
    std::span<const int32_t> chunk(big.prompt.data() + s0, len);
    SequenceInput s{chunk, s0, pg, true};
    std::vector<float> lg;
    m->forward({&s, 1}, &lg);
    chunked.insert(chunked.end(), lg.begin(), lg.end());
  }
  expect_close(chunked, big, GetParam(), "chunked by 3");
}

// FP8 checkpoints once more with every tensor dequantized to bf16: that model must match the HF
// reference (made from the dequantized weights in float32) like the bf16 fixtures do, and the
// FP8 path (FP8 GEMMs + 1x128 activation quantization) must stay near it.
TEST_P(CudaFixtureTest, Fp8PathAgreesWithItsBf16Dequantization) {
  WS_REQUIRE_GPU();
  if (!is_fp8(GetParam())) GTEST_SKIP() << "not an FP8 checkpoint";
  CudaModelOptions o = options();
  auto fp8 = CudaModel::load(GetParam(), o);
  o.dequantize_fp8 = true;
  auto bf = CudaModel::load(GetParam(), o);
  for (const auto& c : testing::load_reference(GetParam())) {
    auto pg = pages(0, static_cast<int64_t>(c.prompt.size()));
    SequenceInput s{c.prompt, 0, pg, true};
    std::vector<float> a, b;
    fp8->forward({&s, 1}, &a);
    bf->forward({&s, 1}, &b);
    const RowErrors deq = row_errors(b, c.logits, c.vocab, 0.06);
    const RowErrors q = row_errors(a, b, c.vocab, 0.2);
    std::printf(
        "[gpu-fixture] %s dequantized vs HF: median %.2e worst %.2e; fp8 vs dequantized: "
        "median %.2e worst %.2e\n",
        GetParam().c_str(), deq.median, deq.worst, q.median, q.worst);
    EXPECT_LT(deq.median, 0.03);
    EXPECT_LE(deq.frac_over, frac_bound(0.15, c.hf_bf16_frac_over));
    EXPECT_LT(q.median, 0.25);
  }
}

TEST_P(CudaFixtureTest, RejectsBadInputWithoutCrashing) {
  WS_REQUIRE_GPU();
  auto m = load();
  std::vector<int32_t> bad{static_cast<int32_t>(m->config().vocab_size)};
  std::vector<int32_t> pg{0};
  SequenceInput s{bad, 0, pg, false};
  std::vector<float> out;
  EXPECT_THROW(m->forward({&s, 1}, &out), Error);
  std::vector<int32_t> ok{1};
  std::vector<int32_t> far{100000};
  SequenceInput s2{ok, 0, far, false};
  EXPECT_THROW(m->forward({&s2, 1}, &out), Error);
  SequenceInput s3{ok, 0, pg, false};
  m->forward({&s3, 1}, &out);
  EXPECT_EQ(static_cast<int64_t>(out.size()), m->config().vocab_size);
}

// The fused launches (norm + FP8 quantization, latent + query rope, GEMV + residual) and PDL
// change no bit: prompts, then two decode steps of two sequences at once (the GEMV and fused MoE
// paths), each against a model with both switched off.
TEST_P(CudaFixtureTest, FusedOpsAndPdlLeaveLogitsUnchanged) {
  WS_REQUIRE_GPU();
  auto run = [&](bool on) {
    CudaModelOptions o = options();
    o.fuse_ops = o.pdl = on;
    auto m = CudaModel::load(GetParam(), o);
    std::vector<float> all;
    auto cases = testing::load_reference(GetParam());
    cases.resize(std::min<size_t>(cases.size(), 2));
    std::vector<std::vector<int32_t>> pg;
    for (size_t i = 0; i < cases.size(); ++i)
      pg.push_back(pages(static_cast<int32_t>(40 * i), cases[i].prompt.size() + 2));
    std::vector<int32_t> next(cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      SequenceInput s{cases[i].prompt, 0, pg[i], true};
      std::vector<float> lg;
      m->forward({&s, 1}, &lg);
      all.insert(all.end(), lg.begin(), lg.end());
      next[i] = static_cast<int32_t>(i + 3);
    }
    for (int step = 0; step < 2; ++step) {
      std::vector<std::vector<int32_t>> tok(cases.size());
      std::vector<SequenceInput> in;
      for (size_t i = 0; i < cases.size(); ++i) {
        tok[i] = {next[i] + step};
        in.push_back({tok[i], static_cast<int64_t>(cases[i].prompt.size()) + step, pg[i], true});
      }
      std::vector<float> lg;
      m->forward(in, &lg);
      all.insert(all.end(), lg.begin(), lg.end());
    }
    return all;
  };
  const auto off = run(false);
  const auto on = run(true);
  ASSERT_EQ(on.size(), off.size());
  size_t diff = 0;
  for (size_t i = 0; i < on.size(); ++i) diff += on[i] != off[i];
  EXPECT_EQ(diff, 0u) << "of " << on.size() << " logits";
}

// The small MoE's shared experts on a second stream (a forked branch of the captured graph) give
// the logits of the inline shared units up to summation order: one and two decode rows, eager
// and through CUDA graphs, after the prompts. FP8 fixtures requantize activations (1x128 groups),
// which turns summation-order differences into different e4m3 codes, and tiny-fp8-dslayout's
// routing flips under such changes (see frac_bound): H200, 2026-11-29, rel_l2 2.4e-3 to 4.9e-3
// on the bf16 fixtures, 0 and 3.5e-2 on the FP8 ones.
TEST_P(CudaFixtureTest, SharedExpertBranchMatchesInlineUnits) {
  WS_REQUIRE_GPU();
  auto run = [&](bool branch, int64_t graph_bs) {
    CudaModelOptions o = options();
    o.moe_shared_branch = branch;
    o.cuda_graph_max_bs = graph_bs;
    auto m = CudaModel::load(GetParam(), o);
    auto cases = testing::load_reference(GetParam());
    cases.resize(std::min<size_t>(cases.size(), 2));
    std::vector<std::vector<int32_t>> pg;
    for (size_t i = 0; i < cases.size(); ++i)
      pg.push_back(pages(static_cast<int32_t>(40 * i), cases[i].prompt.size() + 4));
    std::vector<float> all;
    for (size_t i = 0; i < cases.size(); ++i) {
      SequenceInput s{cases[i].prompt, 0, pg[i], false};
      std::vector<float> lg;
      m->forward({&s, 1}, &lg);
    }
    std::vector<int64_t> pos(cases.size());
    for (size_t i = 0; i < cases.size(); ++i) pos[i] = static_cast<int64_t>(cases[i].prompt.size());
    for (size_t rows = 1; rows <= cases.size(); ++rows) {
      std::vector<std::vector<int32_t>> tok(rows);
      std::vector<SequenceInput> in;
      for (size_t i = 0; i < rows; ++i) {
        tok[i] = {static_cast<int32_t>(i + 3)};
        in.push_back({tok[i], pos[i]++, pg[i], false});
      }
      std::vector<float> lg;
      m->forward(in, &lg);
      all.insert(all.end(), lg.begin(), lg.end());
    }
    return all;
  };
  for (int64_t graph_bs : {int64_t{0}, int64_t{4}}) {
    const auto off = run(false, graph_bs);
    const auto on = run(true, graph_bs);
    ASSERT_EQ(on.size(), off.size());
    const double rel = rel_err(on, off);
    std::printf("[gpu-fixture] %s shared-expert branch (graphs up to %ld): rel_l2 %.2e\n",
                GetParam().c_str(), long(graph_bs), rel);
    EXPECT_LT(rel, is_fp8(GetParam()) ? 1e-1 : 1e-2) << "graphs up to " << graph_bs;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFixtureTest, ::testing::ValuesIn(testing::fixture_dirs()),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).filename().string();
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace wideserve::cuda
