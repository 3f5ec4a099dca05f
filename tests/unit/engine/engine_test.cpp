// The threaded Engine: concurrent submitters, streamed outputs, aborts, bad input at the boundary.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "fake_runner.h"

namespace wideserve::engine {
namespace {

struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, std::vector<int32_t>> tokens;
  std::map<uint64_t, RequestOutput> final;
  OutputCallback cb() {
    return [this](const RequestOutput& o) {
      std::lock_guard<std::mutex> lk(mu);
      auto& t = tokens[o.id];
      t.insert(t.end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finish != FinishReason::kNone) final[o.id] = o;
      cv.notify_all();
    };
  }
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, std::chrono::seconds(60), [&] { return final.size() >= n; });
  }
};

NewRequest req(uint64_t id, int32_t max_new) {
  NewRequest r;
  r.id = id;
  r.prompt = {1, 2, 3, static_cast<int32_t>(id % 40) + 1};
  r.params.temperature = 0.0f;
  r.params.max_new_tokens = max_new;
  r.params.ignore_eos = true;
  return r;
}

TEST(Engine, ConcurrentSubmittersAllFinish) {
  Engine e(EngineConfig{.page_size = 4}, std::make_unique<testing::FakeRunner>(50, 512, 4));
  Collector c;
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) e.add_request(req(t * 100 + i + 1, 1 + i % 9), c.cb());
    });
  for (auto& x : th) x.join();
  ASSERT_TRUE(c.wait_for(200));
  for (auto& [id, o] : c.final) {
    EXPECT_EQ(o.finish, FinishReason::kLength);
    EXPECT_EQ(static_cast<int64_t>(c.tokens[id].size()), o.completion_tokens);
  }
  auto s = e.stats();
  EXPECT_EQ(s.running + s.waiting, 0);
}

TEST(Engine, AbortAndBadInputAreReportedToTheirCaller) {
  Engine e(EngineConfig{.page_size = 4}, std::make_unique<testing::FakeRunner>(50, 512, 4));
  Collector c;
  NewRequest bad = req(1, 4);
  bad.prompt = {1, 999};
  e.add_request(bad, c.cb());
  e.add_request(req(2, 2000), c.cb());
  e.abort(2);  // queued right behind the add: the request is aborted before it completes
  ASSERT_TRUE(c.wait_for(2));
  EXPECT_EQ(c.final[1].finish, FinishReason::kError);
  EXPECT_NE(c.final[1].error.find("outside the vocabulary"), std::string::npos);
  EXPECT_EQ(c.final[2].finish, FinishReason::kAbort);
  // Still serving after both.
  e.add_request(req(3, 3), c.cb());
  ASSERT_TRUE(c.wait_for(3));
  EXPECT_EQ(c.tokens[3].size(), 3u);
}

TEST(Engine, ShutdownEndsEveryRequest) {
  Collector c;
  {
    Engine e(EngineConfig{.page_size = 4}, std::make_unique<testing::FakeRunner>(50, 512, 4));
    for (int i = 1; i <= 5; ++i) e.add_request(req(i, 400), c.cb());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard<std::mutex> lk(c.mu);
  EXPECT_EQ(c.final.size(), 5u);
}

// A runner whose device fails for good at its second step (as a CUDA runner does on an illegal
// address): that step's requests get errors and the engine reports the failure, which the worker
// turns into an exit; before it, the engine is healthy.
class FailingDeviceRunner : public testing::FakeRunner {
 public:
  FailingDeviceRunner() : FakeRunner(50, 512, 4) {}
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) override {
    if (++steps_ == 2) {
      std::lock_guard<std::mutex> lk(mu_);
      fatal_ = "device lost: an illegal memory access";
      throw std::runtime_error("CUDA error: an illegal memory access was encountered");
    }
    FakeRunner::forward(seqs, logits);
  }
  std::string fatal_error() const override {
    std::lock_guard<std::mutex> lk(mu_);
    return fatal_;
  }

 private:
  std::atomic<int> steps_{0};
  mutable std::mutex mu_;
  std::string fatal_;
};

TEST(Engine, RunnerFatalErrorFailsTheStepAndIsReported) {
  Engine e(EngineConfig{.page_size = 4}, std::make_unique<FailingDeviceRunner>());
  EXPECT_EQ(e.fatal_error(), "");
  Collector c;
  e.add_request(req(1, 5), c.cb());
  ASSERT_TRUE(c.wait_for(1));
  EXPECT_EQ(c.final[1].finish, FinishReason::kError);
  EXPECT_NE(c.final[1].error.find("illegal memory access"), std::string::npos);
  EXPECT_EQ(c.tokens[1].size(), 1u);  // the first step's token, then the failed step
  EXPECT_EQ(e.fatal_error(), "device lost: an illegal memory access");
}

}  // namespace
}  // namespace wideserve::engine
