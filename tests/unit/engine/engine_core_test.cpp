// Scheduler behaviour: batch invariance, chunking, prefix cache, retraction, aborts, no leaks.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <tuple>

#include "engine/engine_core.h"
#include "fake_runner.h"
#include "model/deepseek_model.h"
#include "model/greedy_generator.h"

namespace wideserve::engine {
namespace {

using testing::FakeRunner;

struct Result {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  int64_t cached = 0;
  int count_finish = 0;
};

// Runs the engine until idle; `arrivals[step]` lists requests added before that step.
std::map<uint64_t, Result> run_all(EngineCore& e, std::map<int, std::vector<NewRequest>> arrivals,
                                   std::map<int, std::vector<uint64_t>> aborts = {}) {
  std::map<uint64_t, Result> res;
  for (int step = 0; step < 200000; ++step) {
    for (auto& r : arrivals[step]) e.add_request(r);
    for (auto id : aborts[step]) e.abort(id);
    arrivals.erase(step);
    aborts.erase(step);
    if (!e.has_work() && arrivals.empty()) break;
    for (auto& o : e.step()) {
      auto& r = res[o.id * 1000 + o.index];
      r.tokens.insert(r.tokens.end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finish != FinishReason::kNone) {
        r.finish = o.finish;
        r.cached = o.cached_tokens;
        ++r.count_finish;
      }
    }
  }
  return res;
}

NewRequest greedy_req(uint64_t id, std::vector<int32_t> prompt, int32_t max_new) {
  NewRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params.temperature = 0.0f;
  r.params.max_new_tokens = max_new;
  r.params.ignore_eos = true;
  return r;
}

std::vector<int32_t> random_prompt(std::mt19937& g, int64_t vocab, int len) {
  std::vector<int32_t> p(len);
  for (auto& t : p) t = static_cast<int32_t>(g() % vocab);
  return p;
}

void expect_pool_clean(EngineCore& e) {
  auto s = e.stats();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_EQ(s.pages_free + s.pages_cached, s.pages_total) << "pages leaked";
}

// --- Fake model: fast, many requests -------------------------------------------------------

TEST(EngineCoreFake, BatchInvarianceAcrossChunkAndPageSizes) {
  std::mt19937 g(1);
  std::vector<NewRequest> reqs;
  for (int i = 0; i < 40; ++i)
    reqs.push_back(greedy_req(i + 1, random_prompt(g, 50, 1 + g() % 90), 1 + g() % 20));
  std::map<uint64_t, Result> alone;
  for (const auto& r : reqs) {
    EngineCore e(EngineConfig{.page_size = 4}, std::make_unique<FakeRunner>(50, 256, 4));
    alone[r.id * 1000] = run_all(e, {{0, {r}}})[r.id * 1000];
  }
  for (int64_t page : {1, 4, 16})
    for (int64_t chunk : {3, 17, 8192})
      for (bool radix : {false, true}) {
        EngineConfig cfg{
            .chunked_prefill_size = chunk, .page_size = page, .disable_radix_cache = !radix};
        EngineCore e(cfg, std::make_unique<FakeRunner>(50, 4096 / page, page));
        std::map<int, std::vector<NewRequest>> arrivals;
        for (const auto& r : reqs) arrivals[g() % 30].push_back(r);
        auto got = run_all(e, arrivals);
        for (const auto& r : reqs)
          EXPECT_EQ(got[r.id * 1000].tokens, alone[r.id * 1000].tokens)
              << "request " << r.id << " page " << page << " chunk " << chunk << " radix " << radix;
        expect_pool_clean(e);
      }
}

TEST(EngineCoreFake, PrefixCacheHitEqualsMissAndIsReported) {
  std::mt19937 g(2);
  auto shared = random_prompt(g, 50, 40);
  EngineConfig cfg{.page_size = 8};
  EngineCore e(cfg, std::make_unique<FakeRunner>(50, 64, 8));
  auto a = shared, b = shared;
  a.push_back(3);
  b.push_back(4);
  auto r1 = run_all(e, {{0, {greedy_req(1, a, 5)}}});
  auto r2 = run_all(e, {{0, {greedy_req(2, b, 5)}}});
  EXPECT_EQ(r1[1000].cached, 0);
  EXPECT_EQ(r2[2000].cached, 40);  // five full pages of the shared prefix
  EngineCore cold(EngineConfig{.page_size = 8, .disable_radix_cache = true},
                  std::make_unique<FakeRunner>(50, 64, 8));
  EXPECT_EQ(run_all(cold, {{0, {greedy_req(2, b, 5)}}})[2000].tokens, r2[2000].tokens);
  EXPECT_GT(e.stats().prefix_hit_tokens, 0);
  expect_pool_clean(e);
}

TEST(EngineCoreFake, RetractionUnderMemoryPressureCompletesEverything) {
  std::mt19937 g(3);
  std::vector<NewRequest> reqs;
  for (int i = 0; i < 24; ++i)
    reqs.push_back(greedy_req(i + 1, random_prompt(g, 50, 8 + g() % 30), 40));
  std::map<uint64_t, Result> alone;
  for (const auto& r : reqs) {
    EngineCore e(EngineConfig{.page_size = 4}, std::make_unique<FakeRunner>(50, 256, 4));
    alone[r.id * 1000] = run_all(e, {{0, {r}}})[r.id * 1000];
  }
  for (bool radix : {false, true}) {
    // 24 pages of 4 tokens: far less than 24 requests x ~60 tokens.
    EngineCore e(EngineConfig{.page_size = 4, .disable_radix_cache = !radix},
                 std::make_unique<FakeRunner>(50, 24, 4));
    auto got = run_all(e, {{0, reqs}});
    EXPECT_GT(e.stats().retractions, 0);
    for (const auto& r : reqs) {
      EXPECT_EQ(got[r.id * 1000].tokens, alone[r.id * 1000].tokens) << r.id;
      EXPECT_EQ(got[r.id * 1000].finish, FinishReason::kLength);
    }
    expect_pool_clean(e);
  }
}

TEST(EngineCoreFake, ThousandsOfRandomRequestsWithAbortsLeakNothing) {
  std::mt19937 g(4);
  for (bool radix : {false, true}) {
    EngineCore e(EngineConfig{.max_running_requests = 64,
                              .chunked_prefill_size = 64,
                              .page_size = 4,
                              .disable_radix_cache = !radix},
                 std::make_unique<FakeRunner>(50, 200, 4));
    std::map<int, std::vector<NewRequest>> arrivals;
    std::map<int, std::vector<uint64_t>> aborts;
    auto base = random_prompt(g, 50, 20);  // shared prefixes exercise the cache
    for (int i = 0; i < 2000; ++i) {
      auto p = g() % 2 ? base : std::vector<int32_t>{};
      auto tail = random_prompt(g, 50, 1 + g() % 40);
      p.insert(p.end(), tail.begin(), tail.end());
      NewRequest r = greedy_req(i + 1, p, 1 + g() % 30);
      if (g() % 3 == 0) {
        r.params.temperature = 1.0f;
        r.params.ignore_eos = false;
      }
      if (g() % 10 == 0) r.params.n = 2 + g() % 3;
      int at = static_cast<int>(g() % 3000);
      arrivals[at].push_back(r);
      if (g() % 4 == 0) aborts[at + static_cast<int>(g() % 60)].push_back(r.id);
    }
    auto got = run_all(e, arrivals, aborts);
    int finished = 0;
    for (auto& [k, r] : got) {
      EXPECT_EQ(r.count_finish, 1) << "request " << k << " finished " << r.count_finish << " times";
      finished += r.finish != FinishReason::kNone;
    }
    EXPECT_GT(finished, 2000);
    expect_pool_clean(e);
  }
}

TEST(EngineCoreFake, AbortFreesPagesImmediately) {
  EngineCore e(EngineConfig{.page_size = 4, .disable_radix_cache = true},
               std::make_unique<FakeRunner>(50, 64, 4));
  e.add_request(greedy_req(1, std::vector<int32_t>(30, 7), 100));
  e.step();
  EXPECT_LT(e.stats().pages_free, 64);
  e.abort(1);
  EXPECT_EQ(e.stats().pages_free, 64);
  auto out = e.step();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].finish, FinishReason::kAbort);
  EXPECT_FALSE(e.has_work());
}

TEST(EngineCoreFake, NSamplesShareThePromptAndDiffer) {
  EngineCore e(EngineConfig{.page_size = 4}, std::make_unique<FakeRunner>(50, 128, 4));
  NewRequest r = greedy_req(9, std::vector<int32_t>(33, 5), 8);
  r.params.temperature = 1.0f;
  r.params.seed = 11;
  r.params.n = 3;
  auto got = run_all(e, {{0, {r}}});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[9000].cached, 0);
  EXPECT_EQ(got[9001].cached, 32);  // the leader's full prompt pages
  EXPECT_EQ(got[9002].cached, 32);
  EXPECT_NE(got[9000].tokens, got[9001].tokens);
  expect_pool_clean(e);
}

TEST(EngineCoreFake, SeededSamplingIsReproducibleWhateverTheBatch) {
  NewRequest r = greedy_req(5, {1, 2, 3, 4, 5}, 20);
  r.params.temperature = 0.9f;
  r.params.top_p = 0.9f;
  r.params.seed = 1234;
  EngineCore a(EngineConfig{.page_size = 4}, std::make_unique<FakeRunner>(50, 128, 4));
  auto alone = run_all(a, {{0, {r}}})[5000].tokens;
  EngineCore b(EngineConfig{.chunked_prefill_size = 3, .page_size = 2},
               std::make_unique<FakeRunner>(50, 256, 2));
  std::mt19937 g(5);
  std::vector<NewRequest> others;
  for (int i = 0; i < 10; ++i) {
    NewRequest o = greedy_req(100 + i, random_prompt(g, 50, 10), 15);
    o.params.temperature = 1.0f;
    others.push_back(o);
  }
  others.push_back(r);
  EXPECT_EQ(run_all(b, {{0, others}})[5000].tokens, alone);
}

TEST(EngineCoreFake, StopsAtEosStopTokensAndMinTokens) {
  EngineCore e(EngineConfig{.page_size = 4}, std::make_unique<FakeRunner>(50, 128, 4));
  NewRequest r = greedy_req(1, {1, 2, 3}, 10);
  auto free_run = run_all(e, {{0, {r}}})[1000].tokens;
  ASSERT_EQ(free_run.size(), 10u);
  NewRequest s = r;
  s.id = 2;
  s.params.stop_token_ids = {free_run[4]};
  auto stopped = run_all(e, {{0, {s}}})[2000];
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(stopped.tokens.back(), free_run[4]);
  NewRequest m = s;
  m.id = 3;
  m.params.min_new_tokens = 6;  // the stop token is banned for the first 6 tokens
  auto late = run_all(e, {{0, {m}}})[3000];
  EXPECT_GE(late.tokens.size(), 6u);
  for (size_t i = 0; i + 1 < std::min<size_t>(late.tokens.size(), 6); ++i)
    EXPECT_NE(late.tokens[i], free_run[4]);
}

TEST(EngineCoreFake, RejectsBadRequestsClearly) {
  EngineCore e(EngineConfig{.context_length = 64, .page_size = 4},
               std::make_unique<FakeRunner>(50, 32, 4));
  auto msg = [&](NewRequest r) {
    try {
      e.add_request(r);
    } catch (const Error& err) {
      return std::string(err.what());
    }
    return std::string();
  };
  EXPECT_NE(msg(greedy_req(1, std::vector<int32_t>(80, 1), 4)).find("--context-length"),
            std::string::npos);
  EXPECT_NE(msg(greedy_req(2, {1, 99}, 4)).find("outside the vocabulary"), std::string::npos);
  EngineCore small(EngineConfig{.page_size = 4}, std::make_unique<FakeRunner>(50, 32, 4));
  try {
    small.add_request(greedy_req(3, std::vector<int32_t>(60, 1), 100));  // 160 slots > 128
    ADD_FAILURE() << "accepted a request larger than the KV pool";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("--max-total-tokens"), std::string::npos) << err.what();
  }
  NewRequest bad = greedy_req(4, {1}, 4);
  bad.params.top_p = 0.0f;
  EXPECT_NE(msg(bad).find("top_p"), std::string::npos);
  EXPECT_FALSE(e.has_work());
}

// --- The real CPU model --------------------------------------------------------------------

TEST(EngineCoreModel, GreedyTokensEqualRunningAlone) {
  const std::string dir = std::string(WS_TEST_FIXTURES) + "/tiny-bf16-a";
  auto model = model::DeepseekModel::load(dir);
  std::mt19937 g(6);
  std::vector<NewRequest> reqs;
  for (int i = 0; i < 10; ++i)
    reqs.push_back(greedy_req(i + 1, random_prompt(g, 1024, 1 + g() % 40), 1 + g() % 12));
  // Alone: the model's own greedy loop, with each step's logits to judge near-ties.
  std::map<uint64_t, std::vector<std::vector<float>>> steps;
  std::map<uint64_t, std::vector<int32_t>> alone;
  for (const auto& r : reqs)
    alone[r.id] =
        model::greedy_generate(*model, r.prompt, r.params.max_new_tokens, false, &steps[r.id]);
  // The last setting has a pool too small for all requests at once: retraction must kick in.
  for (auto [chunk, page, pool] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {5, 1, 2048}, {32, 16, 2048}, {8192, 4, 2048}, {8192, 4, 64}}) {
    EngineConfig cfg{.chunked_prefill_size = chunk, .max_total_tokens = pool, .page_size = page};
    EngineCore e(cfg, make_cpu_model_runner(dir, pool, page));
    std::map<int, std::vector<NewRequest>> arrivals;
    for (const auto& r : reqs) arrivals[pool < 100 ? 0 : g() % 8].push_back(r);
    auto got = run_all(e, arrivals);
    for (const auto& r : reqs) {
      const auto& mine = got[r.id * 1000].tokens;
      ASSERT_EQ(mine.size(), alone[r.id].size());
      for (size_t k = 0; k < mine.size(); ++k) {
        if (mine[k] == alone[r.id][k]) continue;
        // Batched GEMMs sum in another order: only a near-tie may flip.
        auto row = steps[r.id][k];
        std::sort(row.rbegin(), row.rend());
        EXPECT_LT(row[0] - row[1], 1e-4) << "request " << r.id << " token " << k;
        break;
      }
    }
    if (pool < 100) EXPECT_GT(e.stats().retractions, 0);
    expect_pool_clean(e);
  }
}

}  // namespace
}  // namespace wideserve::engine
