// The engine's device-sampling path: sampled steps ask a capable runner for token ids, passing
// per-row settings, penalty lists from the sampler's history and min_new_tokens bans. The fake
// "device" applies those lists and draws with the row's (seed, step) through the CPU sampler, so
// its tokens equal host sampling exactly when the engine passed the right inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "engine/engine_core.h"
#include "engine/sampler.h"
#include "fake_runner.h"

namespace wideserve::engine {
namespace {

class SampleFakeRunner : public testing::FakeRunner {
 public:
  using FakeRunner::FakeRunner;
  bool supports_device_sampling() const override { return true; }
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) override {
    ++logit_steps;
    FakeRunner::forward(seqs, logits);
  }
  void forward_sample(std::span<const model::SequenceInput> seqs, const DeviceSampleBatch& b,
                      std::vector<int32_t>* ids, std::vector<float>* logprobs) override {
    ++sample_steps;
    batches.push_back(b);
    const size_t R = seqs.size();
    EXPECT_EQ(b.rows.size(), R);
    EXPECT_EQ(b.penalty_offsets.size(), R + 1);
    EXPECT_EQ(b.banned_offsets.size(), R + 1);
    EXPECT_EQ(b.penalty_tokens.size(), b.penalty_counts.size());
    std::vector<float> lg;
    FakeRunner::forward(seqs, &lg);
    const int64_t V = vocab_size();
    ids->assign(R, -1);
    logprobs->assign(b.want_logprobs ? R : 0, 0.0f);
    for (size_t r = 0; r < R; ++r) {
      const DeviceSampleRow& p = b.rows[r];
      std::vector<float> row(lg.begin() + r * V, lg.begin() + (r + 1) * V);
      const std::vector<float> raw = row;
      for (int32_t j = b.penalty_offsets[r]; j < b.penalty_offsets[r + 1]; ++j) {
        float& x = row.at(b.penalty_tokens[j]);
        if (p.repetition != 1.0f) x = x > 0.0f ? x / p.repetition : x * p.repetition;
        const int32_t count = b.penalty_counts[j];
        if (count > 0) x -= p.frequency * static_cast<float>(count) + p.presence;
      }
      for (int32_t j = b.banned_offsets[r]; j < b.banned_offsets[r + 1]; ++j)
        row.at(b.banned_tokens[j]) = -std::numeric_limits<float>::infinity();
      SamplingParams sp;
      sp.temperature = p.temperature;
      sp.top_k = p.top_k;
      sp.top_p = p.top_p;
      sp.min_p = p.min_p;
      SamplerState st(sp, {}, p.seed);
      for (uint64_t k = 0; k < p.step; ++k) st.append(0);
      (*ids)[r] = sample(row, sp, st).token;
      if (b.want_logprobs) {
        double m = -INFINITY, z = 0;
        for (float x : raw) m = std::max<double>(m, x);
        for (float x : raw) z += std::exp(x - m);
        (*logprobs)[r] = static_cast<float>(raw[(*ids)[r]] - m - std::log(z));
      }
    }
  }
  int sample_steps = 0, logit_steps = 0;
  std::vector<DeviceSampleBatch> batches;
};

// Tokens (and logprobs) per request id, running every request to the end.
struct Outcome {
  std::map<uint64_t, std::vector<int32_t>> tokens;
  std::map<uint64_t, std::vector<float>> logprobs;
};
Outcome run(EngineCore& e, const std::vector<NewRequest>& rs) {
  for (const auto& r : rs) e.add_request(r);
  Outcome o;
  while (e.has_work()) {
    for (auto& out : e.step()) {
      EXPECT_TRUE(out.error.empty()) << out.error;
      auto& t = o.tokens[out.id];
      t.insert(t.end(), out.new_tokens.begin(), out.new_tokens.end());
      for (const auto& lp : out.logprobs) o.logprobs[out.id].push_back(lp.logprob);
    }
  }
  return o;
}

NewRequest req(uint64_t id, std::vector<int32_t> prompt) {
  NewRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params.temperature = 0.8f;
  r.params.max_new_tokens = 10;
  r.params.seed = 5 + id;
  return r;
}

EngineConfig config() {
  return EngineConfig{.chunked_prefill_size = 10, .page_size = 4};
}

TEST(DeviceSample, SampledStepsUseForwardSampleAndMatchHostSampling) {
  NewRequest a = req(1, {3, 9, 4, 1, 5, 3, 9, 8, 2, 7, 7});  // chunked: 3 + 8 prompt tokens
  a.params.repetition_penalty = 1.3f;
  a.params.frequency_penalty = 0.4f;
  a.params.presence_penalty = -0.2f;
  a.params.min_new_tokens = 4;
  a.params.stop_token_ids = {6, 11};
  NewRequest b = req(2, {8, 8, 2});
  b.params.top_k = 9;
  b.params.top_p = 0.8f;
  b.params.min_p = 0.05f;
  b.params.top_logprobs = 0;
  NewRequest c = req(3, {1, 2, 3, 4});
  c.params.temperature = 0.0f;  // greedy, but banned EOS first: still a sampled row
  c.params.min_new_tokens = 3;
  c.params.presence_penalty = 1.5f;
  auto* dev = new SampleFakeRunner(64, 64, 4);
  EngineCore with(config(), std::unique_ptr<ModelRunner>(dev));
  EngineCore host(config(), std::make_unique<testing::FakeRunner>(64, 64, 4));
  const Outcome d = run(with, {b, c, a}), h = run(host, {b, c, a});
  EXPECT_EQ(d.tokens, h.tokens);
  EXPECT_EQ(dev->logit_steps, 0);
  EXPECT_GT(dev->sample_steps, 5);
  ASSERT_EQ(d.logprobs.at(2).size(), h.logprobs.at(2).size());
  for (size_t i = 0; i < d.logprobs.at(2).size(); ++i)
    EXPECT_NEAR(d.logprobs.at(2)[i], h.logprobs.at(2)[i], 1e-4);
  EXPECT_EQ(d.logprobs.count(1), 0u);

  // The first step: b and c sample their first token (c with its prompt tokens as penalty
  // entries, count 0, and EOS banned); a's first prompt chunk samples nothing: a plain greedy row.
  const DeviceSampleBatch& s0 = dev->batches.at(0);
  ASSERT_EQ(s0.rows.size(), 3u);
  EXPECT_EQ(s0.rows[2].temperature, 0.0f);
  EXPECT_EQ(s0.rows[2].repetition, 1.0f);
  EXPECT_EQ(s0.penalty_offsets, (std::vector<int32_t>{0, 0, 4, 4}));
  EXPECT_EQ(s0.penalty_tokens, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(s0.penalty_counts, (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_EQ(s0.banned_offsets, (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(s0.banned_tokens, (std::vector<int32_t>{0}));
  EXPECT_TRUE(s0.want_logprobs);
  EXPECT_EQ(s0.rows[0].temperature, 0.8f);
  EXPECT_EQ(s0.rows[0].top_k, 9);
  EXPECT_EQ(s0.rows[0].top_p, 0.8f);
  EXPECT_EQ(s0.rows[0].min_p, 0.05f);
  EXPECT_EQ(s0.rows[0].seed, 7u);
  EXPECT_EQ(s0.rows[0].step, 0u);
  EXPECT_EQ(s0.rows[1].temperature, 0.0f);
  EXPECT_EQ(s0.rows[1].presence, 1.5f);

  // The second step: a samples its first token (EOS and its stop ids banned; penalty entries are
  // its distinct prompt tokens); c's entries now count its first token once, at step 1.
  const DeviceSampleBatch& s1 = dev->batches.at(1);
  ASSERT_EQ(s1.rows.size(), 3u);
  EXPECT_EQ(s1.rows[2].repetition, 1.3f);
  EXPECT_EQ(s1.rows[2].frequency, 0.4f);
  EXPECT_EQ(s1.rows[2].presence, -0.2f);
  EXPECT_EQ(s1.rows[2].step, 0u);
  EXPECT_EQ(std::vector<int32_t>(s1.penalty_tokens.begin() + s1.penalty_offsets[2],
                                 s1.penalty_tokens.end()),
            (std::vector<int32_t>{3, 9, 4, 1, 5, 8, 2, 7}));
  EXPECT_EQ(
      std::vector<int32_t>(s1.banned_tokens.begin() + s1.banned_offsets[2], s1.banned_tokens.end()),
      (std::vector<int32_t>{0, 6, 11}));
  EXPECT_EQ(s1.rows[1].step, 1u);
  const int32_t c_first = d.tokens.at(3).at(0);
  int32_t c_count = -1;
  for (int32_t j = s1.penalty_offsets[1]; j < s1.penalty_offsets[2]; ++j)
    if (s1.penalty_tokens[j] == c_first) c_count = s1.penalty_counts[j];
  EXPECT_EQ(c_count, 1);
}

TEST(DeviceSample, TopLogprobsAlternativesStillGetLogits) {
  NewRequest r = req(4, {5, 6, 7});
  r.params.top_logprobs = 2;
  auto* dev = new SampleFakeRunner(64, 64, 4);
  EngineCore with(config(), std::unique_ptr<ModelRunner>(dev));
  EngineCore host(config(), std::make_unique<testing::FakeRunner>(64, 64, 4));
  EXPECT_EQ(run(with, {r}).tokens, run(host, {r}).tokens);
  EXPECT_EQ(dev->sample_steps, 0);
  EXPECT_GT(dev->logit_steps, 0);
}

}  // namespace
}  // namespace wideserve::engine
