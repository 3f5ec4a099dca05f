// WorkerRouter in kv mode: cached prefixes attract requests, assigned load bounds that pull
// (the shared-system-prompt case), assignments release their load, busy thresholds.
#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "kvcache/block_hash.h"
#include "router/worker_router.h"

namespace wideserve::router {
namespace {

std::vector<int32_t> seq(int32_t start, int32_t n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Candidate cand(const std::string& id, int64_t pages_total = 1000) {
  Candidate c;
  c.instance_id = id;
  c.endpoint = "tcp://" + id;
  c.page_size = 16;
  c.load.kv_pages_total = pages_total;
  return c;
}

// Marks `tokens`' blocks as cached on `id` (a fresh rank state).
void cache_on(KvIndex& idx, const std::string& id, const std::vector<int32_t>& tokens) {
  runtime::KvState s;
  s.blocks = kvcache::block_hashes(tokens, 16);
  idx.reset(WorkerRank{id, 0}, s);
}

TEST(KvRouting, CachedPrefixWinsAtEqualLoad) {
  auto idx = std::make_shared<KvIndex>();
  const std::vector<Candidate> c = {cand("a"), cand("b"), cand("c")};
  for (const auto& x : c) cache_on(*idx, x.instance_id, {});
  const auto p = seq(0, 160);  // 10 blocks
  cache_on(*idx, "b", p);
  WorkerRouter r(RouterOptions{.mode = RouterMode::kKv}, idx, 1);
  for (int i = 0; i < 20; ++i) {
    Assignment a = r.route(c, concat(p, seq(1000 + i * 32, 32)));
    EXPECT_EQ(a.index(), 1u);
    EXPECT_EQ(a.overlap_blocks(), 10);
    EXPECT_EQ(a.blocks(), 12);
  }  // each released at once: the load stays 0
  EXPECT_EQ(r.tracked("b").requests, 0);
  EXPECT_EQ(r.tracked("b").blocks, 0);
}

TEST(KvRouting, AMultiRankWorkerIsRoutedToTheRankHoldingThePrefix) {
  // "ep" has 4 DP ranks, each its own cache; the prefix is cached on rank 2 only.
  auto idx = std::make_shared<KvIndex>();
  Candidate ep = cand("ep");
  ep.dp_size = 4;
  const std::vector<Candidate> c = {cand("a"), ep};
  cache_on(*idx, "a", {});
  const auto p = seq(0, 160);  // 10 blocks
  for (int32_t r = 0; r < 4; ++r) {
    runtime::KvState s;
    if (r == 2) s.blocks = kvcache::block_hashes(p, 16);
    idx->reset(WorkerRank{"ep", r}, s);
  }
  WorkerRouter r(RouterOptions{.mode = RouterMode::kKv}, idx, 1);
  for (int i = 0; i < 10; ++i) {
    Assignment a = r.route(c, concat(p, seq(1000 + i * 32, 32)));
    EXPECT_EQ(a.index(), 1u);
    EXPECT_EQ(a.worker(), "ep");
    EXPECT_EQ(a.dp_rank(), 2);
    EXPECT_EQ(a.overlap_blocks(), 10);
  }
  EXPECT_EQ(r.routed_total(WorkerRank{"ep", 2}), 10);
  EXPECT_EQ(r.routed_total("ep"), 10);
  // Uncached prompts spread over the ranks by their load: four held requests fill the four
  // ranks of "ep" and "a" before any gets a second one.
  std::vector<Assignment> held;
  for (int i = 0; i < 5; ++i) held.push_back(r.route(c, seq(5000 + 64 * i, 64)));
  std::set<std::pair<std::string, int32_t>> seen;
  for (const auto& a : held) seen.insert({a.worker(), a.dp_rank()});
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_TRUE(seen.count({"a", -1}));  // a one-rank worker gets no rank: it has one
  EXPECT_EQ(r.tracked("ep").requests, 4);
  held.clear();
  EXPECT_EQ(r.tracked("ep").requests, 0);
}

TEST(KvRouting, LoadBoundsThePullOfASharedSystemPrompt) {
  // Everyone shares one system prompt, cached on a only (Dynamo's complaint: all traffic went
  // there). Each request in flight adds its whole prompt to its worker's active blocks, so a
  // holds at most overlap x scale / prompt blocks more requests than the others (scale 1 here).
  auto idx = std::make_shared<KvIndex>();
  const std::vector<Candidate> c = {cand("a"), cand("b"), cand("c"), cand("d")};
  for (const auto& x : c) cache_on(*idx, x.instance_id, {});
  const auto sys = seq(0, 256);  // 16 blocks
  cache_on(*idx, "a", sys);
  WorkerRouter r(RouterOptions{.mode = RouterMode::kKv, .prefill_load_scale = 1.0}, idx, 3);
  std::vector<Assignment> inflight;
  for (int i = 0; i < 40; ++i) inflight.push_back(r.route(c, concat(sys, seq(5000 + 64 * i, 64))));
  std::vector<int> per(4, 0);
  for (const auto& a : inflight) ++per[a.index()];
  // 20 blocks a request, 16 cached on a: a may lead by at most ceil(16 / 20) = 1 request.
  for (int i = 1; i < 4; ++i) {
    EXPECT_LE(per[0] - per[i], 1) << per[0] << " vs " << per[i];
    EXPECT_GE(per[i], 9);
  }
  EXPECT_EQ(r.tracked("a").requests, per[0]);
  EXPECT_EQ(r.tracked("a").blocks, per[0] * 20);
  // A larger prefill weight lets the cache pull harder (up to 4 requests here), but still bounded;
  // the default (4) likewise.
  WorkerRouter heavy(RouterOptions{.mode = RouterMode::kKv, .prefill_load_scale = 5.0}, idx, 3);
  std::vector<Assignment> more;
  for (int i = 0; i < 40; ++i) more.push_back(heavy.route(c, concat(sys, seq(9000 + 64 * i, 64))));
  std::vector<int> per2(4, 0);
  for (const auto& a : more) ++per2[a.index()];
  EXPECT_GT(per2[0], per2[1]);
  EXPECT_LE(per2[0] - per2[1], 4);
  // Released assignments return their blocks.
  inflight.clear();
  EXPECT_EQ(r.tracked("a").blocks, 0);
  EXPECT_EQ(r.tracked("b").requests, 0);
}

TEST(KvRouting, AssignmentsMoveAndReleaseOnce) {
  auto idx = std::make_shared<KvIndex>();
  const std::vector<Candidate> c = {cand("a")};
  WorkerRouter r(RouterOptions{.mode = RouterMode::kRoundRobin}, idx, 1);
  Assignment a = r.route(c, seq(0, 33));  // 3 blocks
  EXPECT_EQ(r.tracked("a").blocks, 3);
  Assignment b = std::move(a);
  EXPECT_EQ(r.tracked("a").blocks, 3);
  b.release();
  b.release();
  EXPECT_EQ(r.tracked("a").blocks, 0);
  EXPECT_EQ(r.tracked("a").requests, 0);
}

TEST(KvRouting, TemperatureSpreadsChoices) {
  auto idx = std::make_shared<KvIndex>();
  const std::vector<Candidate> c = {cand("a"), cand("b")};
  for (const auto& x : c) cache_on(*idx, x.instance_id, {});
  const auto p = seq(0, 160);
  cache_on(*idx, "a", p);
  WorkerRouter cold(RouterOptions{.mode = RouterMode::kKv}, idx, 5);
  WorkerRouter hot(RouterOptions{.mode = RouterMode::kKv, .temperature = 1.0}, idx, 5);
  int cold_b = 0, hot_b = 0;
  for (int i = 0; i < 400; ++i) {
    cold_b += cold.route(c, p).index() == 1;  // costs 1 vs 10 blocks: a, always
    hot_b += hot.route(c, p).index() == 1;    // p(b) = 1 / (1 + e) ~ 0.27
  }
  EXPECT_EQ(cold_b, 0);
  EXPECT_GT(hot_b, 70);
  EXPECT_LT(hot_b, 150);
}

TEST(KvRouting, BusyThresholdAndQueueLimit) {
  auto idx = std::make_shared<KvIndex>();
  std::vector<Candidate> c = {cand("a", 100), cand("b", 100)};
  WorkerRouter none(RouterOptions{}, idx, 1);
  c[0].load.kv_pages_active = c[1].load.kv_pages_active = 100;
  EXPECT_FALSE(none.all_busy(c));  // no threshold: never busy

  WorkerRouter r(RouterOptions{.busy_threshold = 0.5, .busy_queue_limit = 3}, idx, 1);
  c[0].load.kv_pages_active = 60;  // reported usage 0.6 > 0.5
  c[1].load.kv_pages_active = 10;
  EXPECT_TRUE(r.is_busy(c[0]));
  EXPECT_FALSE(r.is_busy(c[1]));
  EXPECT_FALSE(r.all_busy(c));
  // Blocks routed here count at once, before the worker reports them: 4 x 16 blocks > 50.
  std::vector<Assignment> held;
  for (int i = 0; i < 4; ++i) held.push_back(r.route(std::span(c).subspan(1), seq(0, 256)));
  EXPECT_TRUE(r.is_busy(c[1]));
  EXPECT_TRUE(r.all_busy(c));
  held.clear();
  EXPECT_FALSE(r.all_busy(c));
  // The queue limit: more than 3 waiting.
  c[1].load.waiting = 3;
  EXPECT_FALSE(r.is_busy(c[1]));
  c[1].load.waiting = 4;
  EXPECT_TRUE(r.all_busy(c));
  EXPECT_FALSE(r.all_busy({}));
  // A worker that has not reported its pool yet is not busy by KV usage.
  Candidate fresh = cand("c", 0);
  EXPECT_FALSE(r.is_busy(fresh));
}

}  // namespace
}  // namespace wideserve::router
