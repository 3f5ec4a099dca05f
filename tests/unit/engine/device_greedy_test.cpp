// The engine's device-greedy path: greedy steps ask a capable runner for argmax ids instead of
// logits, and the tokens are the ones host sampling gives; other steps still get logits.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/engine_core.h"
#include "fake_runner.h"

namespace wideserve::engine {
namespace {

// FakeRunner with an argmax-on-"device" path that counts which path each step took.
class GreedyFakeRunner : public testing::FakeRunner {
 public:
  using FakeRunner::FakeRunner;
  bool supports_device_greedy() const override { return true; }
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) override {
    ++logit_steps;
    FakeRunner::forward(seqs, logits);
  }
  void forward_greedy(std::span<const model::SequenceInput> seqs,
                      std::vector<int32_t>* ids) override {
    ++greedy_steps;
    std::vector<float> lg;
    FakeRunner::forward(seqs, &lg);
    const int64_t V = vocab_size();
    ids->clear();
    for (size_t r = 0; r < seqs.size(); ++r)
      ids->push_back(static_cast<int32_t>(
          std::max_element(lg.begin() + r * V, lg.begin() + (r + 1) * V) - lg.begin() - r * V));
  }
  int greedy_steps = 0, logit_steps = 0;
};

std::vector<int32_t> run(EngineCore& e, const NewRequest& r) {
  e.add_request(r);
  std::vector<int32_t> toks;
  while (e.has_work())
    for (auto& o : e.step()) toks.insert(toks.end(), o.new_tokens.begin(), o.new_tokens.end());
  return toks;
}

NewRequest req(float temperature, int32_t min_new = 0, int32_t logprobs = -1) {
  NewRequest r;
  r.id = 7;
  r.prompt = {3, 9, 4, 1, 5};
  r.params.temperature = temperature;
  r.params.max_new_tokens = 12;
  r.params.min_new_tokens = min_new;
  r.params.top_logprobs = logprobs;
  r.params.ignore_eos = true;
  r.params.seed = 5;
  return r;
}

TEST(DeviceGreedy, GreedyStepsUseDeviceArgmaxAndMatchHostSampling) {
  auto* dev = new GreedyFakeRunner(64, 64, 4);
  EngineCore with(EngineConfig{.page_size = 4}, std::unique_ptr<ModelRunner>(dev));
  EngineCore host(EngineConfig{.page_size = 4}, std::make_unique<testing::FakeRunner>(64, 64, 4));
  EXPECT_EQ(run(with, req(0.f)), run(host, req(0.f)));
  EXPECT_GT(dev->greedy_steps, 0);
  EXPECT_EQ(dev->logit_steps, 0);
}

TEST(DeviceGreedy, SamplingLogprobsAndMinTokensStillGetLogits) {
  for (auto r : {req(0.7f), req(0.f, 0, 2), req(0.f, 4)}) {
    auto* dev = new GreedyFakeRunner(64, 64, 4);
    EngineCore with(EngineConfig{.page_size = 4}, std::unique_ptr<ModelRunner>(dev));
    EngineCore host(EngineConfig{.page_size = 4}, std::make_unique<testing::FakeRunner>(64, 64, 4));
    EXPECT_EQ(run(with, r), run(host, r));
    EXPECT_GT(dev->logit_steps, 0);
  }
}

}  // namespace
}  // namespace wideserve::engine
