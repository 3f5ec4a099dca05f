#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "common/check.h"

namespace wideserve::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams seeded(uint64_t seed, float temperature = 1.0f) {
  SamplingParams p;
  p.seed = seed;
  p.temperature = temperature;
  return p;
}

// Draws n tokens from copies of `row`, appending each to the state (as the engine does).
std::vector<int32_t> draw_many(const std::vector<float>& row, const SamplingParams& p,
                               SamplerState& st, int n, std::vector<int32_t> banned = {}) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = row;
    int32_t t = sample(logits, p, st, banned).token;
    st.append(t);
    out.push_back(t);
  }
  return out;
}

std::vector<int> histogram(const std::vector<int32_t>& tokens, size_t vocab) {
  std::vector<int> h(vocab, 0);
  for (int32_t t : tokens) ++h.at(t);
  return h;
}

std::vector<double> softmax(const std::vector<float>& row, double temperature = 1.0) {
  double m = *std::max_element(row.begin(), row.end());
  std::vector<double> p(row.size());
  double z = 0.0;
  for (size_t i = 0; i < row.size(); ++i) z += p[i] = std::exp((row[i] - m) / temperature);
  for (double& x : p) x /= z;
  return p;
}

// Pearson chi-square statistic of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs) {
  double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has zero probability";
      continue;
    }
    double e = n * probs[i];
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

std::vector<float> random_row(size_t vocab, uint32_t seed, float scale = 3.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> row(vocab);
  for (float& x : row) x = dist(gen);
  return row;
}

TEST(Sampler, GreedyIsFirstArgmax) {
  SamplerState st(SamplingParams{}, {}, 1);
  SamplingParams p = seeded(1, 0.0f);
  std::vector<float> row = {0.5f, 3.0f, std::nanf(""), 3.0f, -kInf, 1.0f};
  EXPECT_EQ(sample(row, p, st).token, 1);
  std::vector<float> big = random_row(129280, 7);
  int32_t expected = static_cast<int32_t>(std::max_element(big.begin(), big.end()) - big.begin());
  EXPECT_EQ(sample(big, p, st).token, expected);
  for (std::vector<int> at : {std::vector<int>{7, 5, 998}, {999, 1000}, {1000}, {0, 3}}) {
    std::vector<float> ties = random_row(1001, 8, 1.0f);
    ties[2] = std::nanf("");
    for (int i : at) ties[i] = 9.0f;
    EXPECT_EQ(sample(ties, p, st).token, *std::min_element(at.begin(), at.end()));
  }
  p.temperature = 1e-7f;  // too small to divide by: greedy
  std::vector<float> row2 = {0.5f, 3.0f, 2.9f};
  EXPECT_EQ(sample(row2, p, st).token, 1);
}

TEST(Sampler, TemperatureFrequenciesMatchSoftmax) {
  const std::vector<float> row = {1.0f, 2.0f, 0.5f, 3.0f, -1.0f};
  for (float t : {1.0f, 0.7f, 2.0f}) {
    SamplingParams p = seeded(42, t);
    SamplerState st(p, {}, 0);
    auto h = histogram(draw_many(row, p, st, 20000), row.size());
    // 4 degrees of freedom: P(chi2 > 25) ~ 5e-5.
    EXPECT_LT(chi_square(h, softmax(row, t)), 25.0) << "temperature " << t;
  }
}

TEST(Sampler, TopKRestrictsSupportAndRenormalises) {
  const std::vector<float> row = {0.1f, 2.0f, 1.5f, -0.3f, 1.0f, 0.9f, 3.0f, 0.0f};
  SamplingParams p = seeded(3);
  p.top_k = 3;  // tokens 6, 1, 2
  SamplerState st(p, {}, 0);
  auto h = histogram(draw_many(row, p, st, 5000), row.size());
  std::vector<float> masked(row.size(), -kInf);
  for (int t : {6, 1, 2}) masked[t] = row[t];
  EXPECT_LT(chi_square(h, softmax(masked)), 20.0);
  for (int t : {6, 1, 2}) EXPECT_GT(h[t], 0);

  // Ties at the k-th value keep the lower token ids.
  SamplingParams q = seeded(4);
  q.top_k = 2;
  SamplerState st2(q, {}, 0);
  auto h2 = histogram(draw_many({1.0f, 1.0f, 1.0f, 1.0f}, q, st2, 2000), 4);
  EXPECT_GT(h2[0], 0);
  EXPECT_GT(h2[1], 0);
  EXPECT_EQ(h2[2] + h2[3], 0);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  // Probabilities 0.4, 0.3, 0.2, 0.1 at tokens 2, 0, 3, 1.
  const std::vector<float> row = {std::log(0.3f), std::log(0.1f), std::log(0.4f), std::log(0.2f)};
  struct Case {
    float top_p;
    std::set<int> support;
  };
  for (const Case& c :
       {Case{0.35f, {2}}, Case{0.65f, {2, 0}}, Case{0.75f, {2, 0, 3}}, Case{0.95f, {0, 1, 2, 3}}}) {
    SamplingParams p = seeded(5);
    p.top_p = c.top_p;
    SamplerState st(p, {}, 0);
    auto h = histogram(draw_many(row, p, st, 5000), row.size());
    for (int t = 0; t < 4; ++t) {
      if (c.support.count(t))
        EXPECT_GT(h[t], 0) << "top_p " << c.top_p << " token " << t;
      else
        EXPECT_EQ(h[t], 0) << "top_p " << c.top_p << " token " << t;
    }
  }
}

TEST(Sampler, TopPOnFullVocabMatchesFullSort) {
  const size_t vocab = 129280;
  for (float top_p : {0.5f, 0.9f, 0.999f}) {
    for (float scale : {0.5f, 4.0f}) {  // flat and peaked rows exercise both threshold rounds
      std::vector<float> row = random_row(vocab, 11, scale);
      std::vector<double> probs = softmax(row);
      std::vector<int32_t> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
      });
      std::vector<char> allowed(vocab, 0);
      double cum = 0.0;
      for (int32_t t : order) {
        allowed[t] = 1;
        cum += probs[t];
        if (cum >= top_p) break;
      }
      SamplingParams p = seeded(6);
      p.top_p = top_p;
      SamplerState st(p, {}, 0);
      std::set<int32_t> distinct;
      for (int32_t t : draw_many(row, p, st, 200)) {
        EXPECT_TRUE(allowed[t]) << "top_p " << top_p << " scale " << scale << " token " << t;
        distinct.insert(t);
      }
      EXPECT_GT(distinct.size(), 1u);
    }
  }
}

TEST(Sampler, TopKOnFullVocabMatchesFullSort) {
  const size_t vocab = 129280;
  std::vector<float> row = random_row(vocab, 12);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  SamplingParams p = seeded(7, 5.0f);  // hot, so that all 20 get drawn
  p.top_k = 20;
  std::set<int32_t> top(order.begin(), order.begin() + 20);
  SamplerState st(p, {}, 0);
  std::set<int32_t> seen;
  for (int32_t t : draw_many(row, p, st, 1000)) {
    EXPECT_TRUE(top.count(t)) << t;
    seen.insert(t);
  }
  EXPECT_EQ(seen, top);
}

TEST(Sampler, MinPDropsTokensBelowFractionOfMax) {
  // Probabilities 0.4, 0.3, 0.2, 0.1: min_p 0.3 -> threshold 0.12 drops token 3.
  const std::vector<float> row = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  SamplingParams p = seeded(8);
  p.min_p = 0.3f;
  SamplerState st(p, {}, 0);
  auto h = histogram(draw_many(row, p, st, 5000), row.size());
  EXPECT_LT(chi_square(h, {0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9, 0.0}), 20.0);
  for (int t = 0; t < 3; ++t) EXPECT_GT(h[t], 0);
  // Combined with top_p (0.4 -> tokens 0 and 1) and top_k.
  p.top_p = 0.65f;
  p.min_p = 0.8f;  // threshold 0.32 drops token 1 as well
  SamplerState st2(p, {}, 0);
  auto h2 = histogram(draw_many(row, p, st2, 500), row.size());
  EXPECT_EQ(h2[0], 500);
  p.top_p = 1.0f;
  p.min_p = 0.6f;  // threshold 0.24: tokens 0 and 1
  p.top_k = 3;
  SamplerState st3(p, {}, 0);
  auto h3 = histogram(draw_many(row, p, st3, 5000), row.size());
  EXPECT_GT(h3[0], 0);
  EXPECT_GT(h3[1], 0);
  EXPECT_EQ(h3[2] + h3[3], 0);
}

TEST(Sampler, NeutralSettingsAreNoOps) {
  const std::vector<float> row = random_row(1000, 13, 1.0f);
  SamplingParams base = seeded(9);
  SamplerState st0(base, {}, 0);
  auto expected = draw_many(row, base, st0, 300);
  for (int variant = 0; variant < 4; ++variant) {
    SamplingParams p = base;
    if (variant == 0) p.top_k = 0;
    if (variant == 1) p.top_k = 1000;  // the whole vocabulary
    if (variant == 2) p.min_p = 0.0f, p.top_p = 1.0f, p.top_k = -1;
    if (variant == 3) p.repetition_penalty = 1.0f, p.presence_penalty = 0, p.frequency_penalty = 0;
    SamplerState st(p, {}, 0);
    EXPECT_EQ(draw_many(row, p, st, 300), expected) << "variant " << variant;
  }
}

TEST(Sampler, PenaltiesChangeLogitsExactly) {
  const std::vector<float> row = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  std::vector<int32_t> prompt = {0, 1, 0};
  SamplingParams p = seeded(10, 0.0f);
  p.repetition_penalty = 1.5f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  SamplerState st(p, prompt, 0);
  st.append(3);
  st.append(3);
  st.append(1);
  std::vector<float> logits = row;
  sample(logits, p, st);
  EXPECT_FLOAT_EQ(logits[0], 2.0f / 1.5f);                      // prompt: repetition only
  EXPECT_FLOAT_EQ(logits[1], -1.0f * 1.5f - 0.5f * 1 - 0.25f);  // prompt + generated once
  EXPECT_FLOAT_EQ(logits[2], 0.5f);                             // untouched
  EXPECT_FLOAT_EQ(logits[3], 3.0f / 1.5f - 0.5f * 2 - 0.25f);   // generated twice
  EXPECT_FLOAT_EQ(logits[4], -2.0f);
  EXPECT_FLOAT_EQ(logits[5], 1.0f);

  // Each penalty alone.
  SamplingParams rep = seeded(10, 0.0f);
  rep.repetition_penalty = 0.5f;  // < 1 encourages repeats
  SamplerState st_rep(rep, prompt, 0);
  logits = row;
  sample(logits, rep, st_rep);
  EXPECT_FLOAT_EQ(logits[0], 4.0f);
  EXPECT_FLOAT_EQ(logits[1], -0.5f);
  EXPECT_FLOAT_EQ(logits[3], 3.0f);  // not in the prompt

  SamplingParams freq = seeded(10, 0.0f);
  freq.frequency_penalty = -2.0f;         // negative encourages repeats
  SamplerState st_freq(freq, prompt, 0);  // the prompt does not count for frequency
  st_freq.append(4);
  st_freq.append(4);
  st_freq.append(4);
  logits = row;
  EXPECT_EQ(sample(logits, freq, st_freq).token, 4);  // -2 + 2 * 3 = 4 > 3
  EXPECT_FLOAT_EQ(logits[4], 4.0f);
  EXPECT_FLOAT_EQ(logits[0], 2.0f);

  SamplingParams pres = seeded(10, 0.0f);
  pres.presence_penalty = 2.0f;
  SamplerState st_pres(pres, prompt, 0);
  st_pres.append(3);
  st_pres.append(3);
  logits = row;
  EXPECT_EQ(sample(logits, pres, st_pres).token, 0);  // 3 - 2 = 1 < 2
  EXPECT_FLOAT_EQ(logits[3], 1.0f);
}

TEST(Sampler, SeededDeterminismIndependentOfInterleaving) {
  const std::vector<float> row = random_row(5000, 14, 1.0f);
  SamplingParams p = seeded(1234);
  p.top_p = 0.9f;
  SamplerState a(p, {}, 0);
  auto alone = draw_many(row, p, a, 200);

  SamplerState a2(p, {}, 999);  // the default seed is ignored when a seed is given
  SamplingParams other = seeded(77, 0.8f);
  other.top_k = 50;
  SamplerState b(other, {}, 0);
  std::vector<float> other_row = random_row(5000, 15, 2.0f);
  std::vector<int32_t> interleaved;
  for (int i = 0; i < 200; ++i) {
    for (int j = 0; j < i % 3; ++j) draw_many(other_row, other, b, 1);
    interleaved.push_back(draw_many(row, p, a2, 1)[0]);
  }
  EXPECT_EQ(interleaved, alone);

  SamplerState c(seeded(1235), {}, 0);
  EXPECT_NE(draw_many(row, p, c, 200), alone);

  // Unseeded: the caller's default seed decides.
  SamplingParams unseeded;
  SamplerState u1(unseeded, {}, 5), u2(unseeded, {}, 5), u3(unseeded, {}, 6);
  auto t1 = draw_many(row, unseeded, u1, 100);
  EXPECT_EQ(draw_many(row, unseeded, u2, 100), t1);
  EXPECT_NE(draw_many(row, unseeded, u3, 100), t1);

  // n > 1: sample_index separates parallel samples of one seeded request.
  SamplerState s0(p, {}, 0, 0), s1(p, {}, 0, 1);
  EXPECT_EQ(s0.seed(), 1234u);
  EXPECT_NE(s1.seed(), s0.seed());
}

TEST(Sampler, UniformDependsOnlyOnSeedAndStep) {
  const std::vector<int32_t> prompt = {5, 6};
  SamplerState a(seeded(1), {}, 0), b(seeded(1), prompt, 0);
  b.append(3);
  double sum = 0.0;
  for (int64_t i = 0; i < 10000; ++i) {
    double u = a.uniform(i);
    EXPECT_EQ(u, b.uniform(i));
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(Sampler, LogprobsAreRawLogSoftmax) {
  const std::vector<float> row = {1.0f, 4.0f, -2.0f, 3.5f, 0.0f, 3.5f, 2.0f};
  std::vector<double> lp(row.size());
  {
    double m = 4.0, z = 0.0;
    for (float x : row) z += std::exp(x - m);
    for (size_t i = 0; i < row.size(); ++i) lp[i] = row[i] - m - std::log(z);
  }
  SamplingParams p = seeded(16, 0.5f);
  p.top_logprobs = 3;
  p.repetition_penalty = 2.0f;  // modifies token 1 and 6, which must not change the logprobs
  p.presence_penalty = 1.0f;
  std::vector<int32_t> prompt = {1};
  SamplerState st(p, prompt, 0);
  st.append(6);
  for (int i = 0; i < 50; ++i) {
    std::vector<float> logits = row;
    SampleResult r = sample(logits, p, st);
    EXPECT_NEAR(r.logprob, lp[r.token], 1e-5) << r.token;
    ASSERT_EQ(r.top.size(), 3u);
    EXPECT_EQ(r.top[0].token, 1);
    EXPECT_EQ(r.top[1].token, 3);  // tie with 5: lower id first
    EXPECT_EQ(r.top[2].token, 5);
    for (const TokenLogprob& t : r.top) EXPECT_NEAR(t.logprob, lp[t.token], 1e-5);
    st.append(r.token);
  }
  // 0: chosen token only; -1: nothing.
  p.top_logprobs = 0;
  std::vector<float> logits = row;
  SampleResult r0 = sample(logits, p, st);
  EXPECT_TRUE(r0.top.empty());
  EXPECT_NEAR(r0.logprob, lp[r0.token], 1e-5);
  p.top_logprobs = -1;
  logits = row;
  EXPECT_TRUE(sample(logits, p, st).top.empty());

  // Large vocabulary, greedy: the top list matches a full sort.
  std::vector<float> big = random_row(129280, 17);
  SamplingParams g = seeded(1, 0.0f);
  g.top_logprobs = 20;
  SamplerState sg(g, {}, 0);
  std::vector<float> copy = big;
  SampleResult rg = sample(copy, g, sg);
  std::vector<int32_t> order(big.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 20, order.end(),
                    [&](int32_t a, int32_t b) { return big[a] > big[b]; });
  ASSERT_EQ(rg.top.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(rg.top[i].token, order[i]);
  for (int i = 1; i < 20; ++i) EXPECT_GE(rg.top[i - 1].logprob, rg.top[i].logprob);
  EXPECT_EQ(rg.token, order[0]);
  EXPECT_FLOAT_EQ(rg.logprob, rg.top[0].logprob);
}

TEST(Sampler, BannedTokensAreNeverDrawn) {
  const std::vector<float> row = {1.0f, 5.0f, 4.5f, 0.0f};
  SamplingParams p = seeded(18, 1.5f);
  SamplerState st(p, {}, 0);
  auto h = histogram(draw_many(row, p, st, 3000, {1, 3}), row.size());
  EXPECT_EQ(h[1], 0);
  EXPECT_EQ(h[3], 0);
  EXPECT_GT(h[0], 0);
  EXPECT_GT(h[2], 0);
  std::vector<float> logits = row;
  EXPECT_EQ(sample(logits, seeded(1, 0.0f), st, std::vector<int32_t>{1}).token, 2);
}

TEST(Sampler, NeverPicksMinusInfOrNan) {
  std::vector<float> row(1000, -kInf);
  row[17] = std::nanf("");
  row[500] = -3.0f;
  row[900] = -4.0f;
  for (int variant = 0; variant < 4; ++variant) {
    SamplingParams p = seeded(19, variant == 0 ? 0.0f : 1.0f);
    if (variant == 2) p.top_k = 5;
    if (variant == 3) p.top_p = 0.5f, p.min_p = 0.1f;
    SamplerState st(p, {}, 0);
    for (int32_t t : draw_many(row, p, st, 200)) EXPECT_TRUE(t == 500 || t == 900) << t;
  }
}

TEST(Sampler, PlusInfinityLogitsShareTheMass) {
  const std::vector<float> row = {1.0f, kInf, 2.0f, kInf, std::nanf("")};
  for (float t : {0.0f, 1.0f}) {
    SamplingParams p = seeded(20, t);
    p.top_logprobs = 2;
    SamplerState st(p, {}, 0);
    std::set<int32_t> drawn;
    for (int i = 0; i < 200; ++i) {
      std::vector<float> logits = row;
      SampleResult r = sample(logits, p, st);
      st.append(r.token);
      drawn.insert(r.token);
      EXPECT_NEAR(r.logprob, -std::log(2.0f), 1e-6);
      ASSERT_EQ(r.top.size(), 2u);
      EXPECT_EQ(r.top[0].token, 1);
      EXPECT_EQ(r.top[1].token, 3);
    }
    const std::set<int32_t> expected = t == 0.0f ? std::set<int32_t>{1} : std::set<int32_t>{1, 3};
    EXPECT_EQ(drawn, expected);
  }
}

TEST(Sampler, EverythingBannedIsAnError) {
  const std::vector<float> row = {1.0f, 2.0f};
  for (float t : {0.0f, 1.0f}) {
    SamplingParams p = seeded(1, t);
    p.top_logprobs = 2;
    SamplerState st(p, {}, 0);
    std::vector<float> logits = row;
    try {
      sample(logits, p, st, std::vector<int32_t>{0, 1});
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
    std::vector<float> bad = row;
    EXPECT_THROW(sample(bad, p, st, std::vector<int32_t>{2}), Error);  // out of vocabulary
  }
}

}  // namespace
}  // namespace wideserve::engine
