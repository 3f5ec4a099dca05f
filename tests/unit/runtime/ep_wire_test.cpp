// Wide-EP data on the wire: the EP figures of a worker's load report (msgpack heartbeat and etcd
// record, both with and without them), the request-plane RankWire, the multi-rank engine's
// plan/report messages, and one engine spread over two "nodes" (leader + follower engines over
// Gloo in this process) giving the single-rank engine's tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <msgpack.hpp>

#include <future>
#include <map>
#include <set>
#include <thread>

#include "common/check.h"
#include "dist/launch.h"
#include "dist/tcp_store.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "engine/multi_rank_engine.h"
#include "runtime/codec.h"
#include "runtime/etcd_record.h"
#include "runtime/rank_wire.h"

namespace wideserve::runtime {
namespace {

engine::EpStats ep_stats() {
  engine::EpStats e;
  e.ranks = 8;
  e.layers = {3, 4, 5};
  e.layer_imbalance = {1.0, 1.1, 3.5};  // 1.1: doubles survive exactly
  e.forwards = 1234;
  e.tokens_dispatched = 5000000000LL;
  e.bytes_moved = 7;
  e.rebalances = 2;
  return e;
}

void expect_ep_eq(const engine::EpStats& a, const engine::EpStats& b) {
  EXPECT_EQ(a.ranks, b.ranks);
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.layer_imbalance, b.layer_imbalance);
  EXPECT_EQ(a.forwards, b.forwards);
  EXPECT_EQ(a.tokens_dispatched, b.tokens_dispatched);
  EXPECT_EQ(a.bytes_moved, b.bytes_moved);
  EXPECT_EQ(a.rebalances, b.rebalances);
}

Heartbeat heartbeat() {
  Heartbeat h;
  h.info.instance_id = "h:1:ab";
  h.info.endpoint = "tcp://127.0.0.1:1";
  h.load.running = 3;
  h.load.kv_pages_active = 9;
  h.load.ep = ep_stats();
  return h;
}

TEST(EpLoadCodec, HeartbeatCarriesEpStats) {
  Heartbeat b = std::get<Heartbeat>(decode(encode(heartbeat())));
  EXPECT_EQ(b.load.running, 3);
  EXPECT_EQ(b.load.kv_pages_active, 9);
  expect_ep_eq(b.load.ep, ep_stats());
  Heartbeat none;
  none.info = heartbeat().info;
  EXPECT_EQ(std::get<Heartbeat>(decode(encode(none))).load.ep.ranks, 0);
}

// Re-encodes the frame of `h` with its WorkerLoad body cut to `fields` fields (an older worker)
// or with the EpStats imbalance list cut short (malformed).
std::string doctored(const Heartbeat& h, uint32_t load_fields, bool cut_imbalance) {
  const std::string frame = encode(h);
  msgpack::object_handle oh = msgpack::unpack(frame.data(), frame.size());
  msgpack::object root = oh.get();
  msgpack::object& body = root.via.array.ptr[2];
  msgpack::object& load = body.via.array.ptr[1];
  load.via.array.size = load_fields;
  if (cut_imbalance) load.via.array.ptr[6].via.array.ptr[2].via.array.size = 1;
  msgpack::sbuffer sb;
  msgpack::pack(sb, root);
  return std::string(sb.data(), sb.size());
}

TEST(EpLoadCodec, OlderLoadWithoutEpStillReads) {
  Heartbeat b = std::get<Heartbeat>(decode(doctored(heartbeat(), 6, false)));
  EXPECT_EQ(b.load.kv_pages_active, 9);
  EXPECT_EQ(b.load.ep.ranks, 0);
  EXPECT_TRUE(b.load.ep.layer_imbalance.empty());
  try {
    decode(doctored(heartbeat(), 7, true));
    FAIL() << "expected kDataLoss";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find("EpStats"), std::string::npos) << e.what();
  }
}

TEST(EpLoadCodec, EtcdRecordCarriesEpStats) {
  WorkerRecord r{heartbeat().info, heartbeat().load, false};
  WorkerRecord back = decode_worker_record(encode_worker_record(r));
  expect_ep_eq(back.load.ep, ep_stats());
  r.load.ep = {};
  const std::string plain = encode_worker_record(r);
  EXPECT_EQ(plain.find("\"ep\""), std::string::npos);  // one-rank workers: no EP object
  EXPECT_EQ(decode_worker_record(plain).load.ep.ranks, 0);
}

engine::NewRequest request(uint64_t id) {
  engine::NewRequest r;
  r.id = id;
  r.prompt = {5, 6, 7};
  r.params.temperature = 0.5f;
  r.params.seed = 99;
  r.params.n = 2;
  r.params.stop_token_ids = {1, 2};
  r.sample_index = 1;
  r.resumed_tokens = 1;
  r.disagg.bootstrap_room = 77;
  return r;
}

TEST(RankWire, PlanAndReportRoundTrip) {
  const engine::RankWire w = request_plane_rank_wire();
  ASSERT_TRUE(w.complete());
  engine::RankPlan p;
  p.command = engine::RankCommand::kStep;
  p.work.push_back({2, {request(10), request(11)}, {3, 4}});
  p.work.push_back({3, {}, {5}});
  const engine::RankPlan q = engine::decode_plan(engine::encode_plan(p, w), w);
  EXPECT_EQ(q.command, engine::RankCommand::kStep);
  ASSERT_EQ(q.work.size(), 2u);
  EXPECT_EQ(q.work[0].rank, 2);
  ASSERT_EQ(q.work[0].adds.size(), 2u);
  const auto& a = q.work[0].adds[1];
  EXPECT_EQ(a.id, 11u);
  EXPECT_EQ(a.prompt, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(a.params.temperature, 0.5f);
  EXPECT_EQ(a.params.seed, 99u);
  EXPECT_EQ(a.params.n, 2);
  EXPECT_EQ(a.params.stop_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(a.sample_index, 1);
  EXPECT_EQ(a.resumed_tokens, 1);
  EXPECT_EQ(a.disagg.bootstrap_room, 77u);
  EXPECT_EQ(q.work[0].aborts, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(q.work[1].aborts, (std::vector<uint64_t>{5}));

  engine::RankReport r;
  r.has_work = true;
  r.stats.running = 4;
  r.stats.pages_evictable = 6;
  engine::RequestOutput o;
  o.id = 10;
  o.index = 1;
  o.new_tokens = {42};
  o.finish = engine::FinishReason::kError;
  o.error = "boom";
  r.outputs.push_back({o, true});
  kvcache::KvCacheChange stored;
  stored.parent = 7;
  stored.blocks = {{11, 12}, {13, 14}};
  kvcache::KvCacheChange removed;
  removed.kind = kvcache::KvCacheChange::Kind::kRemoved;
  removed.removed = {13};
  kvcache::KvCacheChange cleared;
  cleared.kind = kvcache::KvCacheChange::Kind::kCleared;
  r.kv_changes = {stored, removed, cleared};
  const engine::RankReport s = engine::decode_report(engine::encode_report(r, w), w);
  ASSERT_EQ(s.kv_changes.size(), 3u);
  EXPECT_EQ(s.kv_changes[0].kind, kvcache::KvCacheChange::Kind::kStored);
  EXPECT_EQ(s.kv_changes[0].parent, std::optional<uint64_t>(7));
  ASSERT_EQ(s.kv_changes[0].blocks.size(), 2u);
  EXPECT_EQ(s.kv_changes[0].blocks[1].hash, 13u);
  EXPECT_EQ(s.kv_changes[0].blocks[1].tokens_hash, 14u);
  EXPECT_EQ(s.kv_changes[1].kind, kvcache::KvCacheChange::Kind::kRemoved);
  EXPECT_FALSE(s.kv_changes[1].parent.has_value());
  EXPECT_EQ(s.kv_changes[1].removed, (std::vector<uint64_t>{13}));
  EXPECT_EQ(s.kv_changes[2].kind, kvcache::KvCacheChange::Kind::kCleared);
  EXPECT_TRUE(s.has_work);
  EXPECT_EQ(s.stats.running, 4);
  EXPECT_EQ(s.stats.pages_evictable, 6);
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_TRUE(s.outputs[0].done);
  EXPECT_EQ(s.outputs[0].output.index, 1);
  EXPECT_EQ(s.outputs[0].output.new_tokens, (std::vector<int32_t>{42}));
  EXPECT_EQ(s.outputs[0].output.error, "boom");

  const std::string enc = engine::encode_plan(p, w);
  for (size_t cut : {size_t{0}, size_t{3}, enc.size() / 2, enc.size() - 1})
    EXPECT_THROW(engine::decode_plan(std::string_view(enc).substr(0, cut), w), Error) << cut;
  EXPECT_THROW(engine::decode_plan(enc + "x", w), Error);
  std::string bad_count = engine::encode_plan({engine::RankCommand::kIdle, {}}, w);
  bad_count[4] = '\x7f';  // the work count: more entries than bytes
  EXPECT_THROW(engine::decode_plan(bad_count, w), Error);
}

// One engine over 4 ranks in two "nodes" (2 ranks each) joined over Gloo: node 0's engine takes
// the requests, node 1's follows; the tokens equal the single-rank engine's.
const std::string kModel = std::string(WS_TEST_FIXTURES) + "/tiny-bf16-a";

engine::EngineConfig engine_config() {
  engine::EngineConfig c;
  c.max_total_tokens = 2048;
  c.page_size = 16;
  c.chunked_prefill_size = 24;
  return c;
}

std::map<uint64_t, std::vector<int32_t>> run(engine::AsyncEngine& eng) {
  std::map<uint64_t, std::vector<int32_t>> toks;
  std::map<uint64_t, std::promise<void>> done;
  std::mutex mu;
  std::vector<engine::NewRequest> rs;
  for (uint64_t i = 0; i < 6; ++i) {
    engine::NewRequest r;
    r.id = i + 1;
    for (uint64_t t = 0; t < 5 + 9 * i; ++t)
      r.prompt.push_back(static_cast<int32_t>((t * 37 + i * 11) % 1000 + 3));
    r.params.temperature = 0.0f;
    r.params.max_new_tokens = 6 + static_cast<int32_t>(i % 3);
    r.params.ignore_eos = true;
    r.params.n = i == 5 ? 2 : 1;  // samples of one request finish one by one on a far rank
    rs.push_back(std::move(r));
  }
  for (auto& r : rs) done[r.id];
  std::map<uint64_t, int> open;
  for (auto& r : rs) open[r.id] = r.params.n;
  for (auto& r : rs) {
    const uint64_t id = r.id;
    eng.add_request(std::move(r), [&, id](const engine::RequestOutput& o) {
      std::lock_guard<std::mutex> lk(mu);
      EXPECT_NE(o.finish, engine::FinishReason::kError) << o.error;
      toks[id * 10 + o.index].insert(toks[id * 10 + o.index].end(), o.new_tokens.begin(),
                                     o.new_tokens.end());
      if (o.finish != engine::FinishReason::kNone && --open[id] == 0) done[id].set_value();
    });
  }
  for (auto& [id, p] : done)
    EXPECT_EQ(p.get_future().wait_for(std::chrono::seconds(120)), std::future_status::ready);
  return toks;
}

TEST(MultiNodeEngine, LeaderAndFollowerGiveOneRankTokens) {
  std::map<uint64_t, std::vector<int32_t>> ref;
  {
    engine::Engine e(engine_config(), engine::make_cpu_model_runner(kModel, 2048, 16));
    ref = run(e);
  }
  int port;
  {
    dist::TcpStoreServer probe("127.0.0.1", 0);
    port = probe.port();
  }
  dist::LaunchOptions lo;
  lo.world_size = 4;
  lo.nnodes = 2;
  lo.dist_init_addr = "127.0.0.1:" + std::to_string(port);
  lo.timeout = std::chrono::seconds(30);
  dist::LocalRanks node0, node1;
  std::thread t1([&] {
    dist::LaunchOptions o = lo;
    o.node_rank = 1;
    node1 = dist::launch_local_ranks(o);
  });
  node0 = dist::launch_local_ranks(lo);
  t1.join();
  engine::MultiRankOptions mo;
  mo.wire = request_plane_rank_wire();
  mo.idle_round = std::chrono::milliseconds(50);
  mo.metrics_interval = 3;
  // KV events: node 1 forwards its ranks' cache changes; node 0 hands every rank's to a recorder.
  std::vector<std::shared_ptr<kvcache::KvEventRecorder>> seen(4);
  for (auto& r : seen) r = std::make_shared<kvcache::KvEventRecorder>();
  engine::MultiRankOptions leader_opts = mo;
  leader_opts.kv_event_sink = [&](int g) { return seen.at(g); };
  mo.forward_kv_events = true;
  // Each node loads its own model copy (the engine releases the full experts).
  engine::MultiRankEngine follower(engine_config(), model::DeepseekModel::load(kModel),
                                   std::move(node1.groups), mo);
  EXPECT_FALSE(follower.leader());
  std::string why = "not finished";
  std::thread waiter([&] { why = follower.wait_follower(); });
  {
    engine::MultiRankEngine leader(engine_config(), model::DeepseekModel::load(kModel),
                                   std::move(node0.groups), leader_opts);
    EXPECT_TRUE(leader.leader());
    EXPECT_EQ(leader.num_ranks(), 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // idle rounds in between
    EXPECT_EQ(run(leader), ref);
    const auto st = leader.stats();
    EXPECT_EQ(st.ep.ranks, 4);
    EXPECT_GT(st.ep.tokens_dispatched, 0);
    EXPECT_GT(st.pages_total, 0);
    EXPECT_TRUE(leader.fatal_error().empty());
    // Requests went to ranks of both nodes.
    std::set<int> ranks;
    for (uint64_t id = 100; id < 104; ++id) {
      engine::NewRequest r;
      r.id = id;
      r.prompt = {1, 2, 3};
      r.params.max_new_tokens = 1;
      std::promise<int> p;
      leader.add_request(r, [&, id](const engine::RequestOutput& o) {
        if (o.finish != engine::FinishReason::kNone) p.set_value(leader.rank_of(id));
      });
      ranks.insert(p.get_future().get());
    }
    EXPECT_EQ(ranks, (std::set<int>{0, 1, 2, 3}));
    // Every rank (2 and 3 on node 1, through the reports) stored blocks of its prompts.
    for (int g = 0; g < 4; ++g) {
      const auto changes = seen[g]->take();
      EXPECT_TRUE(std::any_of(changes.begin(), changes.end(),
                              [](const kvcache::KvCacheChange& c) {
                                return c.kind == kvcache::KvCacheChange::Kind::kStored &&
                                       !c.blocks.empty();
                              }))
          << "rank " << g << ": " << changes.size() << " changes";
    }
  }  // leader shutdown stops the follower
  waiter.join();
  EXPECT_EQ(why, "");
}

}  // namespace
}  // namespace wideserve::runtime
