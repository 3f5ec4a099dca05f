// Migration bookkeeping: the continuation request (token accounting), the ledger (owner, limit),
// and the splice: the tokens before a worker's loss + the continuation's tokens equal an
// undisturbed run, for greedy and for seeded sampling with penalties and n > 1 (engine core with
// the fake runner, and the mock engine).
#include "frontend/migration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>

#include "../engine/fake_runner.h"
#include "engine/engine_core.h"
#include "engine/mock_engine.h"

namespace wideserve::frontend {
namespace {

using engine::FinishReason;
using engine::NewRequest;
using engine::RequestOutput;
using engine::SamplingParams;

TEST(Migration, ResumeRequestCarriesPromptPlusGeneratedAndFewerTokens) {
  SamplingParams p;
  p.max_new_tokens = 10;
  p.min_new_tokens = 4;
  p.n = 3;
  p.seed = 7;
  p.temperature = 0.8f;
  p.frequency_penalty = 0.5f;
  auto g = make_resume_request({1, 2, 3}, p, 2, {50, 60});
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->token_ids, (std::vector<int32_t>{1, 2, 3, 50, 60}));
  EXPECT_EQ(g->params.n, 1);
  EXPECT_EQ(g->params.max_new_tokens, 8);
  EXPECT_EQ(g->params.min_new_tokens, 2);
  EXPECT_EQ(g->params.seed, std::optional<uint64_t>(7));
  EXPECT_FLOAT_EQ(g->params.temperature, 0.8f);
  EXPECT_FLOAT_EQ(g->params.frequency_penalty, 0.5f);
  EXPECT_EQ(g->sample_index, 2);
  EXPECT_EQ(g->resumed_tokens, 2);
  // min_tokens already reached: 0, never negative.
  auto g2 = make_resume_request({1}, p, 0, {5, 6, 7, 8, 9});
  ASSERT_TRUE(g2.has_value());
  EXPECT_EQ(g2->params.min_new_tokens, 0);
  EXPECT_EQ(g2->params.max_new_tokens, 5);
  // Nothing generated yet: the plain request again (n = 1 for that sample).
  auto g3 = make_resume_request({1, 2}, p, 1, {});
  ASSERT_TRUE(g3.has_value());
  EXPECT_EQ(g3->token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(g3->resumed_tokens, 0);
  EXPECT_EQ(g3->params.max_new_tokens, 10);
  // Everything it asked for already came: nothing to resume.
  EXPECT_FALSE(make_resume_request({1}, p, 0, std::vector<int32_t>(10, 5)).has_value());
}

TEST(Migration, LedgerKeepsOwnersTokensAndTheLimitPerChoice) {
  MigrationLedger l(2, 1);
  l.set_owner(0, 10);
  l.set_owner(1, 10);
  l.record(0, 10, {1, 2});
  l.record(1, 10, {7});
  l.record(0, 99, {3});  // a call that does not own choice 0: stale, ignored
  EXPECT_EQ(l.tokens(0), (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(l.try_migrate(0));
  l.set_owner(0, 11);
  l.record(0, 10, {4});  // the old owner's late output
  l.record(0, 11, {5});
  EXPECT_EQ(l.tokens(0), (std::vector<int32_t>{1, 2, 5}));
  EXPECT_EQ(l.owner(0), 11u);
  EXPECT_FALSE(l.try_migrate(0)) << "limit 1 per choice";
  EXPECT_TRUE(l.try_migrate(1)) << "the other choice has its own budget";
  EXPECT_EQ(l.migrations(0), 1);
  EXPECT_EQ(l.total_migrations(), 2);

  MigrationLedger none(1, 0);
  EXPECT_FALSE(none.try_migrate(0));
  EXPECT_EQ(none.total_migrations(), 0);
}

TEST(Migration, OnlyWorkerLossMigrates) {
  RequestOutput o;
  o.finish = FinishReason::kError;
  o.error = "the prompt has 9000 tokens; the context length is 4096";
  EXPECT_FALSE(is_worker_loss(o)) << "the request's own fault";
  o.worker_lost = true;
  EXPECT_TRUE(is_worker_loss(o));
  o.finish = FinishReason::kAbort;
  EXPECT_FALSE(is_worker_loss(o));
}

TEST(Migration, SeedIsPinnedOnlyForUnseededSampling) {
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  pin_seed_for_migration(greedy, 42);
  EXPECT_FALSE(greedy.seed.has_value());
  SamplingParams seeded;
  seeded.seed = 5;
  pin_seed_for_migration(seeded, 42);
  EXPECT_EQ(seeded.seed, std::optional<uint64_t>(5));
  SamplingParams random;
  pin_seed_for_migration(random, 42);
  EXPECT_EQ(random.seed, std::optional<uint64_t>(42));
}

NewRequest to_new_request(uint64_t id, const runtime::GenerateRequest& g) {
  NewRequest r;
  r.id = id;
  r.prompt = g.token_ids;
  r.params = g.params;
  r.sample_index = g.sample_index;
  r.resumed_tokens = g.resumed_tokens;
  return r;
}

// Every sample's tokens of one request, run alone on a fresh engine core.
std::map<int32_t, std::vector<int32_t>> run_core(const NewRequest& r) {
  engine::EngineCore e(engine::EngineConfig{.page_size = 4},
                       std::make_unique<engine::testing::FakeRunner>(64, 512, 4));
  e.add_request(r);
  std::map<int32_t, std::vector<int32_t>> out;
  for (int step = 0; step < 10000 && e.has_work(); ++step)
    for (auto& o : e.step()) {
      EXPECT_NE(o.finish, FinishReason::kError) << o.error;
      auto& t = out[o.index];
      t.insert(t.end(), o.new_tokens.begin(), o.new_tokens.end());
    }
  return out;
}

void expect_splice_matches(const SamplingParams& params) {
  const std::vector<int32_t> prompt = {3, 14, 15, 9, 26, 5, 35};
  NewRequest full;
  full.id = 1;
  full.prompt = prompt;
  full.params = params;
  const auto ref = run_core(full);
  ASSERT_EQ(ref.size(), static_cast<size_t>(params.n));
  for (int32_t i = 0; i < params.n; ++i) {
    const auto& want = ref.at(i);
    ASSERT_GE(want.size(), static_cast<size_t>(std::max(2, params.min_new_tokens)));
    for (size_t cut : {size_t{1}, size_t{5}, want.size() - 1}) {
      if (cut >= want.size()) continue;
      // The worker died after `cut` tokens of sample i: continue on a fresh engine.
      std::vector<int32_t> before(want.begin(), want.begin() + static_cast<long>(cut));
      auto g = make_resume_request(prompt, params, i, before);
      ASSERT_TRUE(g.has_value());
      auto rest = run_core(to_new_request(2, *g));
      ASSERT_EQ(rest.size(), 1u);
      std::vector<int32_t> spliced = before;
      spliced.insert(spliced.end(), rest.at(0).begin(), rest.at(0).end());
      EXPECT_EQ(spliced, want) << "sample " << i << ", cut after " << cut;
    }
  }
}

TEST(Migration, GreedySpliceEqualsUndisturbedRun) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_new_tokens = 12;
  p.ignore_eos = true;
  p.repetition_penalty = 1.3f;
  expect_splice_matches(p);
}

TEST(Migration, SeededSpliceWithPenaltiesAndSamplesEqualsUndisturbedRun) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  p.seed = 1234;
  p.n = 3;
  p.max_new_tokens = 12;
  p.min_new_tokens = 8;  // EOS (id 0) banned for 8 tokens: the continuation must keep counting
  p.frequency_penalty = 1.5f;
  p.presence_penalty = 0.7f;
  expect_splice_matches(p);
}

TEST(Migration, ResumedTokensNeedASingleSampleAndALongerPrompt) {
  engine::EngineCore e(engine::EngineConfig{.page_size = 4},
                       std::make_unique<engine::testing::FakeRunner>(64, 512, 4));
  NewRequest r;
  r.id = 1;
  r.prompt = {1, 2, 3};
  r.params.max_new_tokens = 4;
  r.resumed_tokens = 3;  // the whole prompt cannot be earlier output
  EXPECT_THROW(e.add_request(r), Error);
  r.resumed_tokens = 1;
  r.params.n = 2;
  EXPECT_THROW(e.add_request(r), Error);
}

std::vector<int32_t> run_mock(engine::MockEngine& m, const NewRequest& r) {
  std::promise<std::vector<int32_t>> done;
  auto tokens = std::make_shared<std::vector<int32_t>>();
  m.add_request(r, [&done, tokens](const RequestOutput& o) {
    tokens->insert(tokens->end(), o.new_tokens.begin(), o.new_tokens.end());
    if (o.finish != FinishReason::kNone) done.set_value(*tokens);
  });
  auto f = done.get_future();
  EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  return f.get();
}

TEST(Migration, MockEngineContinuesItsTokenStream) {
  engine::MockEngineConfig cfg;
  cfg.decode_step_ms = 0.1;
  engine::MockEngine m(cfg);
  const std::vector<int32_t> prompt = {100, 200, 300};
  SamplingParams p;
  p.max_new_tokens = 8;
  p.n = 2;
  p.ignore_eos = true;
  for (int32_t i = 0; i < p.n; ++i) {
    NewRequest one;
    one.id = 10 + static_cast<uint64_t>(i);
    one.prompt = prompt;
    one.params = p;
    one.params.n = 1;
    one.sample_index = i;
    const auto want = run_mock(m, one);
    ASSERT_EQ(want.size(), 8u);
    std::vector<int32_t> before(want.begin(), want.begin() + 3);
    auto g = make_resume_request(prompt, p, i, before);
    ASSERT_TRUE(g.has_value());
    auto rest = run_mock(m, to_new_request(20 + static_cast<uint64_t>(i), *g));
    before.insert(before.end(), rest.begin(), rest.end());
    EXPECT_EQ(before, want) << "sample " << i;
  }
  m.shutdown();
}

}  // namespace
}  // namespace wideserve::frontend
