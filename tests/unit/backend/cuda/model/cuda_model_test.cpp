// The GPU model against HF transformers' reference logits (tests/fixtures/tiny-*), and the step
// contract the engine relies on: decode from the cache, batching, chunked prefill.
#include <gtest/gtest.h>

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

// bf16 activations and weights against a float32 reference.
constexpr double kBf16Tol = 3e-2;

class CudaFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<CudaModel> load() {
    CudaModelOptions o;
    o.page_size = 16;
    o.num_pages = 256;
    o.max_step_tokens = 512;
    o.max_seqs = 16;
    return CudaModel::load(GetParam(), o);
  }
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
    ASSERT_EQ(out.size(), c.logits.size());
    const double e = rel_err(out, c.logits);
    EXPECT_LT(e, kBf16Tol) << GetParam() << " case " << i;
    std::printf("[gpu-fixture] %s case %zu (%zu tokens): rel err %.2e\n", GetParam().c_str(), i,
                c.prompt.size(), e);
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
        EXPECT_LT(c.margins[k], 0.1)
            << "step " << k << ": got " << ids[0] << " want " << c.greedy[k];
        break;
      }
      std::vector<int32_t> next{ids[0]};
      SequenceInput d{next, static_cast<int64_t>(c.prompt.size() + k), pg, false};
      m->forward_greedy({&d, 1}, &ids);
    }
  }
}

TEST_P(CudaFixtureTest, BatchedAndChunkedEqualSeparateRuns) {
  WS_REQUIRE_GPU();
  auto m = load();
  auto cases = testing::load_reference(GetParam());
  // Batch: every prompt at once, all logits.
  std::vector<std::vector<int32_t>> pgs;
  std::vector<SequenceInput> in;
  for (size_t i = 0; i < cases.size(); ++i)
    pgs.push_back(pages(static_cast<int32_t>(60 * i), cases[i].prompt.size()));
  for (size_t i = 0; i < cases.size(); ++i) in.push_back({cases[i].prompt, 0, pgs[i], true});
  std::vector<float> out;
  m->forward(in, &out);
  size_t at = 0;
  for (const auto& c : cases) {
    std::vector<float> mine(out.begin() + at, out.begin() + at + c.logits.size());
    at += c.logits.size();
    EXPECT_LT(rel_err(mine, c.logits), kBf16Tol);
  }
  // Chunked prefill of the longest prompt: chunks of 3 tokens over the cached prefix.
  const auto& big = *std::max_element(cases.begin(), cases.end(), [](auto& a, auto& b) {
    return a.prompt.size() < b.prompt.size();
  });
  auto pg = pages(3, big.prompt.size());
  const int64_t V = big.vocab, n = static_cast<int64_t>(big.prompt.size());
  for (int64_t s0 = 0; s0 < n; s0 += 3) {
    const int64_t len = std::min<int64_t>(3, n - s0);
    std::span<const int32_t> chunk(big.prompt.data() + s0, len);
    SequenceInput s{chunk, s0, pg, true};
    std::vector<float> lg;
    m->forward({&s, 1}, &lg);
    std::vector<float> ref(big.logits.begin() + s0 * V, big.logits.begin() + (s0 + len) * V);
    EXPECT_LT(rel_err(lg, ref), kBf16Tol) << "chunk at " << s0;
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

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFixtureTest, ::testing::ValuesIn(testing::fixture_dirs()),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).filename().string();
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace wideserve::cuda
