// The multi-rank (wide EP) engine gives the same greedy tokens as the single-rank engine.
#include <gtest/gtest.h>

#include <future>
#include <map>

#include "common/check.h"
#include "dist/launch.h"
#include "dist/thread_group.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "engine/multi_rank_engine.h"

namespace wideserve::engine {
namespace {

const std::string kModel = std::string(WS_TEST_FIXTURES) + "/tiny-bf16-a";

EngineConfig engine_config() {
  EngineConfig c;
  c.max_total_tokens = 2048;
  c.page_size = 16;
  c.chunked_prefill_size = 24;  // long prompts take several steps: mixed prefill/decode steps
  return c;
}

std::vector<NewRequest> requests() {
  std::vector<NewRequest> rs;
  for (uint64_t i = 0; i < 7; ++i) {
    NewRequest r;
    r.id = i + 1;
    for (uint64_t t = 0; t < 5 + 9 * i; ++t)
      r.prompt.push_back(static_cast<int32_t>((t * 37 + i * 11) % 1000 + 3));
    r.params.temperature = 0.0f;
    r.params.max_new_tokens = 6 + static_cast<int32_t>(i % 3);
    r.params.ignore_eos = true;
    rs.push_back(std::move(r));
  }
  return rs;
}

// Sends every request at once; returns id -> generated tokens.
std::map<uint64_t, std::vector<int32_t>> run(AsyncEngine& eng) {
  std::map<uint64_t, std::vector<int32_t>> toks;
  std::map<uint64_t, std::promise<void>> done;
  std::mutex mu;
  auto rs = requests();
  for (auto& r : rs) done[r.id];
  for (auto& r : rs) {
    const uint64_t id = r.id;
    eng.add_request(std::move(r), [&, id](const RequestOutput& o) {
      std::lock_guard<std::mutex> lk(mu);
      EXPECT_NE(o.finish, FinishReason::kError) << o.error;
      toks[id].insert(toks[id].end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finish != FinishReason::kNone) done[id].set_value();
    });
  }
  for (auto& [id, p] : done)
    EXPECT_EQ(p.get_future().wait_for(std::chrono::seconds(120)), std::future_status::ready);
  return toks;
}

const std::map<uint64_t, std::vector<int32_t>>& reference() {
  static auto* ref = [] {
    Engine e(engine_config(), make_cpu_model_runner(kModel, 2048, 16));
    return new std::map<uint64_t, std::vector<int32_t>>(run(e));
  }();
  return *ref;
}

struct Case {
  int ranks;
  int redundant;
  moe::DispatchAlgorithm dispatch;
  moe::DeepepMode mode;
  int64_t rebalance_every;
  LoadBalanceMethod lb;
};

class MultiRankEngineTest : public ::testing::TestWithParam<Case> {};

TEST_P(MultiRankEngineTest, SameTokensAsOneRank) {
  const Case c = GetParam();
  MultiRankOptions o;
  o.load_balance = c.lb;
  o.ep.num_redundant_experts = c.redundant;
  o.ep.dispatch = c.dispatch;
  o.ep.deepep_mode = c.mode;
  o.ep.rebalance_every = c.rebalance_every;
  o.metrics_log_interval = 5;
  std::shared_ptr<model::DeepseekModel> m = model::DeepseekModel::load(kModel);
  MultiRankEngine eng(engine_config(), m, dist::make_thread_group(c.ranks), o);
  auto got = run(eng);
  EXPECT_EQ(got, reference());
  if (c.ranks > 1) {
    auto mt = eng.ep_metrics();
    EXPECT_GT(mt.forwards, 0);
    EXPECT_GT(mt.tokens_dispatched, 0);
    EXPECT_FALSE(mt.layer_imbalance.empty());
    if (c.rebalance_every > 0) EXPECT_GT(mt.rebalances, 0);
    // What the worker reports: cumulative counts and the latest imbalance per MoE layer.
    const EpStats ep = eng.stats().ep;
    EXPECT_EQ(ep.ranks, c.ranks);
    EXPECT_EQ(ep.layers.size(), ep.layer_imbalance.size());
    EXPECT_FALSE(ep.layers.empty());
    for (double x : ep.layer_imbalance) {
      EXPECT_GE(x, 1.0);
      EXPECT_LE(x, c.ranks);
    }
    EXPECT_GE(ep.forwards, mt.forwards);
    EXPECT_GE(ep.tokens_dispatched, mt.tokens_dispatched);
    EXPECT_GT(ep.bytes_moved, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ranks, MultiRankEngineTest,
    ::testing::Values(Case{1, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kNormal, 0,
                           LoadBalanceMethod::kRoundRobin},
                      Case{2, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kAuto, 0,
                           LoadBalanceMethod::kTotalRequests},
                      Case{4, 0, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kLowLatency, 0,
                           LoadBalanceMethod::kTotalTokens},
                      Case{4, 4, moe::DispatchAlgorithm::kDynamic, moe::DeepepMode::kAuto, 4,
                           LoadBalanceMethod::kRoundRobin},
                      Case{2, 2, moe::DispatchAlgorithm::kStatic, moe::DeepepMode::kNormal, 3,
                           LoadBalanceMethod::kRoundRobin}));

TEST(MultiRankEngine, GlooRanksInOneProcess) {
  dist::LaunchOptions lo;
  lo.world_size = 2;
  lo.dist_init_addr = "127.0.0.1:0";  // port 0: the store picks one; ranks cannot find it
  // Use a fixed free port instead: bind a server on 0 to learn one, then release it.
  int port;
  {
    dist::TcpStoreServer probe("127.0.0.1", 0);
    port = probe.port();
  }
  lo.dist_init_addr = "127.0.0.1:" + std::to_string(port);
  auto ranks = dist::launch_local_ranks(lo);
  EXPECT_EQ(ranks.backend, "gloo");
  MultiRankOptions o;
  std::shared_ptr<model::DeepseekModel> m = model::DeepseekModel::load(kModel);
  MultiRankEngine eng(engine_config(), m, std::move(ranks.groups), o);
  EXPECT_EQ(run(eng), reference());
}

TEST(DpController, Methods) {
  NewRequest a;
  a.id = 1;
  a.prompt.assign(100, 1);
  NewRequest b;
  b.id = 2;
  b.prompt.assign(10, 1);
  NewRequest c;
  c.id = 3;
  c.prompt.assign(10, 1);
  DpController tok(2, LoadBalanceMethod::kTotalTokens);
  EXPECT_EQ(tok.pick(a), 0);
  EXPECT_EQ(tok.pick(b), 1);
  EXPECT_EQ(tok.pick(c), 1);  // rank 1 still holds fewer tokens
  DpController req(2, LoadBalanceMethod::kTotalRequests);
  EXPECT_EQ(req.pick(a), 0);
  EXPECT_EQ(req.pick(b), 1);
  req.finished(0, 1);
  EXPECT_EQ(req.pick(c), 0);
  DpController room(4, LoadBalanceMethod::kFollowBootstrapRoom);
  a.disagg.bootstrap_room = 7;
  EXPECT_EQ(room.pick(a), 3);
  EXPECT_THROW(parse_load_balance_method("shortest_queue"), Error);
}

TEST(DpController, ARoutedRankWinsOverTheMethod) {
  DpController tok(3, LoadBalanceMethod::kTotalTokens);
  NewRequest a;
  a.id = 1;
  a.prompt.assign(100, 1);
  a.dp_rank = 2;  // the kv router saw its prefix cached on rank 2
  EXPECT_EQ(tok.pick(a), 2);
  NewRequest b;
  b.id = 2;
  b.prompt.assign(10, 1);
  b.dp_rank = 2;
  EXPECT_EQ(tok.pick(b), 2);  // even though rank 2 holds the most tokens now
  EXPECT_EQ(tok.in_flight(2), 2);
  NewRequest c;
  c.id = 3;
  c.prompt.assign(10, 1);
  c.dp_rank = 7;              // a stale route (no such rank): the method decides
  EXPECT_EQ(tok.pick(c), 0);  // ranks 0 and 1 are empty: the first
  c.id = 4;
  c.dp_rank = -1;
  EXPECT_EQ(tok.pick(c), 1);
}

}  // namespace
}  // namespace wideserve::engine
