// The CPU model against HF transformers reference fixtures, and its internal consistency
// (decode from the cache vs recompute, absorbed vs expanded attention, batching).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "kvcache/page_pool.h"
#include "model/deepseek_model.h"
#include "model/greedy_generator.h"
#include "reference_fixtures.h"

namespace wideserve::model {
namespace {

using wideserve::testing::fixture_dirs;
using wideserve::testing::load_reference;

std::vector<float> full_logits(const DeepseekModel& m, std::span<const int32_t> ids,
                               AttentionMode mode = AttentionMode::kAuto) {
  const auto& c = m.config();
  kvcache::MlaKvStorage kv(c.num_hidden_layers, kvcache::pages_for(ids.size(), 16), 16,
                           c.kv_cache_dim());
  std::vector<int32_t> pages;
  for (int32_t p = 0; p < kv.num_pages(); ++p) pages.push_back(p);
  SequenceInput s{ids, 0, pages, true};
  std::vector<float> out;
  m.forward({&s, 1}, kv, &out, ForwardOptions{mode});
  return out;
}

// max |a - b| / max |ref|.
double rel_err(std::span<const float> a, std::span<const float> ref) {
  double mx = 0, md = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    mx = std::max(mx, std::fabs(double(ref[i])));
    md = std::max(md, std::fabs(double(a[i]) - double(ref[i])));
  }
  return md / std::max(mx, 1e-30);
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, LogitsMatchReference) {
  auto m = DeepseekModel::load(GetParam());
  auto cases = load_reference(GetParam());
  ASSERT_FALSE(cases.empty());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto out = full_logits(*m, cases[i].prompt);
    ASSERT_EQ(out.size(), cases[i].logits.size());
    double e = rel_err(out, cases[i].logits);
    std::printf("  %s case %zu: %zu tokens, max |diff| / max |ref| = %.2e\n", GetParam().c_str(), i,
                cases[i].prompt.size(), e);
    EXPECT_LT(e, 1e-3) << GetParam() << " case " << i << " (" << cases[i].prompt.size()
                       << " tokens)";
  }
}

TEST_P(FixtureTest, GreedyTokensMatchReferenceWhereMarginIsClear) {
  auto m = DeepseekModel::load(GetParam());
  for (const auto& c : load_reference(GetParam())) {
    auto got = greedy_generate(*m, c.prompt, static_cast<int64_t>(c.greedy.size()), false);
    ASSERT_EQ(got.size(), c.greedy.size());
    for (size_t k = 0; k < got.size(); ++k) {
      if (got[k] == c.greedy[k]) continue;
      // A near-tie may flip under another summation order; after that the sequences diverge.
      EXPECT_LT(c.margins[k], 1e-2)
          << "token " << k << ": got " << got[k] << " want " << c.greedy[k];
      break;
    }
  }
}

TEST_P(FixtureTest, DecodeFromCacheEqualsRecompute) {
  auto m = DeepseekModel::load(GetParam());
  auto cases = load_reference(GetParam());
  const auto& c = cases.back();
  std::vector<std::vector<float>> steps;
  auto got = greedy_generate(*m, c.prompt, 8, false, &steps);
  std::vector<int32_t> seq = c.prompt;
  for (size_t k = 0; k < got.size(); ++k) {
    auto all = full_logits(*m, seq, AttentionMode::kExpanded);
    std::span<const float> last(all.data() + (seq.size() - 1) * m->config().vocab_size,
                                m->config().vocab_size);
    EXPECT_LT(rel_err(steps[k], last), 1e-4) << "decode step " << k;
    seq.push_back(got[k]);
  }
}

TEST_P(FixtureTest, AbsorbedAttentionEqualsExpanded) {
  auto m = DeepseekModel::load(GetParam());
  auto c = load_reference(GetParam()).back();
  auto a = full_logits(*m, c.prompt, AttentionMode::kAbsorbed);
  auto b = full_logits(*m, c.prompt, AttentionMode::kExpanded);
  EXPECT_LT(rel_err(a, b), 1e-4);
}

TEST_P(FixtureTest, BatchedSequencesEqualSeparateRuns) {
  auto m = DeepseekModel::load(GetParam());
  auto cases = load_reference(GetParam());
  const auto& cfg = m->config();
  // Every case as one sequence of a single step, plus a chunked prefill of the longest.
  kvcache::PagePool pool(256);
  kvcache::MlaKvStorage kv(cfg.num_hidden_layers, 256, 16, cfg.kv_cache_dim());
  std::vector<std::vector<int32_t>> pages(cases.size());
  std::vector<SequenceInput> in;
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(pool.alloc(kvcache::pages_for(cases[i].prompt.size(), 16), &pages[i]));
    in.push_back({cases[i].prompt, 0, pages[i], true});
  }
  std::vector<float> out;
  m->forward(in, kv, &out);
  size_t off = 0;
  for (const auto& c : cases) {
    std::span<const float> mine(out.data() + off, c.logits.size());
    EXPECT_LT(rel_err(mine, c.logits), 1e-3);
    off += c.logits.size();
  }
  // Chunked prefill: the longest prompt in chunks of 7 tokens gives the same last logits.
  const auto& big = cases.back();
  std::vector<int32_t> pg;
  ASSERT_TRUE(pool.alloc(kvcache::pages_for(big.prompt.size(), 16), &pg));
  std::vector<float> lg;
  for (size_t s = 0; s < big.prompt.size(); s += 7) {
    size_t n = std::min<size_t>(7, big.prompt.size() - s);
    SequenceInput chunk{std::span<const int32_t>(big.prompt).subspan(s, n), static_cast<int64_t>(s),
                        pg, true};
    m->forward({&chunk, 1}, kv, &lg);
    std::span<const float> ref(big.logits.data() + s * big.vocab, n * big.vocab);
    EXPECT_LT(rel_err(lg, ref), 1e-3) << "chunk at " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTest, ::testing::ValuesIn(fixture_dirs()),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).filename().string();
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace wideserve::model
