// Expert parallelism over thread ranks: logits and greedy tokens equal the single-rank model.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "common/check.h"
#include "dist/thread_group.h"
#include "kvcache/page_pool.h"
#include "model/deepseek_model.h"
#include "model/ep_rank.h"
#include "model/greedy_generator.h"

namespace wideserve::model {
namespace {

const std::string kModel = std::string(WS_TEST_FIXTURES) + "/tiny-bf16-a";

std::vector<std::vector<int32_t>> prompts() {
  return {
      {1, 5, 9, 200, 17, 33, 2, 700}, {4, 4, 4, 4, 90}, {11, 300, 12, 800, 5, 6, 7, 8, 9, 10}, {3}};
}

// With `ep` and `drain`, the rank then joins idle forwards until every rank is done (each rank
// must drain as often as the others: a rank that starts new work after a finished drain finds
// nobody to exchange with).
std::vector<float> full_logits(const DeepseekModel& m, std::span<const int32_t> ids, EpMoe* ep,
                               bool drain = true) {
  const auto& c = m.config();
  kvcache::MlaKvStorage kv(c.num_hidden_layers, kvcache::pages_for(ids.size(), 16), 16,
                           c.kv_cache_dim());
  std::vector<int32_t> pages(kv.num_pages());
  for (int32_t p = 0; p < kv.num_pages(); ++p) pages[p] = p;
  SequenceInput s{ids, 0, pages, true};
  ForwardOptions o;
  o.ep = ep;
  std::vector<float> logits;
  m.forward({&s, 1}, kv, &logits, o);
  if (ep && drain) ep_drain(m, *ep, kv);
  return logits;
}

struct Case {
  int ranks;
  int redundant;
  moe::DispatchAlgorithm dispatch;
  moe::DeepepMode mode;
  bool vocab_parallel_head = false;  // without --enable-dp-lm-head
};

class EpMoeTest : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() { model_ = DeepseekModel::load(kModel).release(); }
  static void TearDownTestSuite() { delete model_; }
  static DeepseekModel* model_;
};
DeepseekModel* EpMoeTest::model_ = nullptr;

// Runs fn(rank, ep) on every rank (thread), after building each rank's EpMoe.
void on_ranks(const DeepseekModel& m, const Case& c, const std::function<void(int, EpMoe&)>& fn) {
  auto groups = dist::make_thread_group(c.ranks, std::chrono::seconds(60));
  EpOptions o;
  o.num_redundant_experts = c.redundant;
  o.dispatch = c.dispatch;
  o.deepep_mode = c.mode;
  o.max_dispatch_tokens_per_rank = 64;
  o.vocab_parallel_head = c.vocab_parallel_head;
  std::vector<std::thread> ts;
  std::vector<std::exception_ptr> errs(c.ranks);
  for (int r = 0; r < c.ranks; ++r)
    ts.emplace_back([&, r] {
      try {
        EpMoe ep(m.config(), m.weights(), *groups[r], o);
        fn(r, ep);
      } catch (...) {
        errs[r] = std::current_exception();
      }
    });
  for (auto& t : ts) t.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
  EXPECT_LT(worst, 1e-4);
}

TEST_P(EpMoeTest, LogitsAndGreedyMatchOneRank) {
  const Case c = GetParam();
  const DeepseekModel& m = *model_;
  auto ps = prompts();
  std::vector<std::vector<float>> ref;
  std::vector<std::vector<int32_t>> ref_gen;
  for (const auto& p : ps) {
    ref.push_back(full_logits(m, p, nullptr));
    ref_gen.push_back(greedy_generate(m, p, 6, false));
  }
  // Rank r takes prompts r, r + ranks, ...; rank 0 also runs an extra generation so that ranks
  // finish at different times (idle ranks keep joining).
  std::vector<std::vector<float>> got(ps.size());
  std::vector<std::vector<int32_t>> gen(ps.size());
  on_ranks(m, c, [&](int r, EpMoe& ep) {
    const auto& cf = m.config();
    kvcache::MlaKvStorage kv(cf.num_hidden_layers, 4, 64, cf.kv_cache_dim());
    // Ranks may hold different numbers of prompts (3 ranks): one drain for all of them.
    ep_run_rank(m, ep, kv, [&] {
      for (size_t i = r; i < ps.size(); i += c.ranks) got[i] = full_logits(m, ps[i], &ep, false);
    });
    ep_run_rank(m, ep, kv, [&] {
      ForwardOptions o;
      o.ep = &ep;
      for (size_t i = r; i < ps.size(); i += c.ranks)
        gen[i] = greedy_generate(m, ps[i], 6, false, nullptr, o);
    });
  });
  for (size_t i = 0; i < ps.size(); ++i) {
    SCOPED_TRACE(i);
    expect_close(got[i], ref[i]);
    EXPECT_EQ(gen[i], ref_gen[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ranks, EpMoeTest,
    ::testing::Values(Case{1, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kNormal},
                      Case{2, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kNormal},
                      Case{4, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kLowLatency},
                      Case{4, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kAuto},
                      Case{2, 4, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kAuto},
                      Case{4, 4, moe::DispatchAlgorithm::kDynamic, moe::DeepepMode::kNormal},
                      Case{4, 8, moe::DispatchAlgorithm::kDynamic, moe::DeepepMode::kLowLatency},
                      // The LM head split by vocabulary (3 ranks: uneven slices).
                      Case{2, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kNormal, true},
                      Case{3, 2, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kAuto, true},
                      Case{4, 4, moe::DispatchAlgorithm::kDynamic, moe::DeepepMode::kLowLatency,
                           true}));

TEST(EpMoe, OneRankIsBitExact) {
  auto m = DeepseekModel::load(kModel);
  auto p = prompts()[0];
  auto ref = full_logits(*m, p, nullptr);
  on_ranks(*m, {1, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kNormal},
           [&](int, EpMoe& ep) { EXPECT_EQ(full_logits(*m, p, &ep), ref); });
}

TEST(EpMoe, RebalanceKeepsResults) {
  auto m = DeepseekModel::load(kModel);
  auto ps = prompts();
  std::vector<std::vector<float>> ref;
  for (const auto& p : ps) ref.push_back(full_logits(*m, p, nullptr));
  std::vector<std::vector<float>> got(ps.size());
  on_ranks(*m, {4, 4, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kNormal},
           [&](int r, EpMoe& ep) {
             const auto before = ep.placement().phy2log;
             full_logits(*m, ps[r], &ep);  // record loads
             ep.rebalance();
             if (r == 0) EXPECT_NE(ep.placement().phy2log, before);  // loads are skewed
             got[r] = full_logits(*m, ps[r], &ep);
             auto mt = ep.metrics();
             EXPECT_EQ(mt.rebalances, 1);
             EXPECT_GE(mt.layer_imbalance[0], 1.0);
           });
  for (size_t i = 0; i < ps.size(); ++i) expect_close(got[i], ref[i]);
}

TEST(EpMoe, LowLatencyOverflowFailsOnEveryRank) {
  auto m = DeepseekModel::load(kModel);
  auto groups = dist::make_thread_group(2, std::chrono::seconds(30));
  EpOptions o;
  o.deepep_mode = moe::DeepepMode::kLowLatency;
  o.max_dispatch_tokens_per_rank = 4;
  std::vector<std::string> errors(2);
  std::vector<std::thread> ts;
  for (int r = 0; r < 2; ++r)
    ts.emplace_back([&, r] {
      EpMoe ep(m->config(), m->weights(), *groups[r], o);
      try {
        full_logits(*m, r == 0 ? prompts()[0] : prompts()[3], &ep);  // 8 tokens on rank 0
      } catch (const Error& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (const auto& e : errors)
    EXPECT_NE(e.find("SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK=4"), std::string::npos) << e;
}

TEST(EpMoe, BadRedundancyIsRejected) {
  auto m = DeepseekModel::load(kModel);
  auto groups = dist::make_thread_group(1);
  EpOptions o;
  o.num_redundant_experts = 1;  // 17 experts are fine on 1 rank
  EXPECT_NO_THROW(EpMoe(m->config(), m->weights(), *groups[0], o));
  auto g3 = dist::make_thread_group(3);
  o.num_redundant_experts = 1;  // 17 over 3 ranks is not
  EXPECT_THROW(EpMoe(m->config(), m->weights(), *g3[0], o), Error);
}

}  // namespace
}  // namespace wideserve::model
