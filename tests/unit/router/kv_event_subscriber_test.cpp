// KV event plane over real ZMQ sockets: the worker's publisher and the frontend's subscriber keep
// the index equal to the cache; a gap in event ids makes the subscriber resync from the state.
#include "router/kv_event_subscriber.h"

#include <gtest/gtest.h>
#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <thread>

#include "common/check.h"
#include "runtime/kv_event_publisher.h"
#include "runtime/zmq_util.h"

namespace wideserve::router {
namespace {

using namespace std::chrono_literals;

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

std::vector<kvcache::KvBlockHash> blocks(std::initializer_list<uint64_t> hs) {
  std::vector<kvcache::KvBlockHash> out;
  for (uint64_t h : hs) out.push_back({h, h ^ 1});
  return out;
}

TEST(KvEventPlane, PublisherToSubscriberKeepsTheIndexInStep) {
  runtime::KvEventPublisher pub("127.0.0.1", "127.0.0.1");
  auto cache = pub.sink(0);
  // Blocks stored before the frontend follows come with the first state answer.
  cache->on_stored(std::nullopt, blocks({11, 12}));
  auto idx = std::make_shared<KvIndex>();
  KvEventSubscriber sub(idx);
  sub.add_worker("w", pub.events_endpoint(), pub.state_endpoint());
  const WorkerRank w{"w", 0};
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(w) == 2; }));
  EXPECT_GE(sub.stats("w").resyncs, 1u);
  // Live events, each applied in order (a slow SUB join may cost one more resync, never a wrong
  // index).
  ASSERT_TRUE(wait_for([&] {
    cache->on_stored(12, blocks({13}));
    return idx->num_blocks(w) >= 3;
  }));
  cache->on_removed(std::vector<uint64_t>{13});
  cache->on_stored(12, blocks({14, 15}));
  const std::vector<uint64_t> chain = {11, 12, 14, 15};
  ASSERT_TRUE(wait_for([&] { return idx->overlap(w, chain) == 4 && idx->num_blocks(w) == 4; }));
  EXPECT_EQ(idx->last_event_id(w), pub.state().last_event_id);
  cache->on_cleared();
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(w) == 0; }));
  EXPECT_EQ(idx->last_event_id(w), pub.state().last_event_id);
  // Removal drops the worker's entries.
  sub.remove_worker("w");
  ASSERT_TRUE(wait_for([&] { return !idx->known(w); }));
}

TEST(KvEventPlane, EveryDpRankOfAMultiRankWorkerIsIndexedOnItsOwn) {
  // Ranks 0 and 1 live here; rank 2 is on another node (answers empty, never publishes).
  runtime::KvEventPublisher pub("127.0.0.1", "127.0.0.1", {0, 1});
  auto r0 = pub.sink(0), r1 = pub.sink(1);
  EXPECT_THROW(pub.sink(2), Error);
  r0->on_stored(std::nullopt, blocks({21, 22}));
  r1->on_stored(std::nullopt, blocks({31}));
  auto idx = std::make_shared<KvIndex>();
  KvEventSubscriber sub(idx);
  sub.add_worker("ep", pub.events_endpoint(), pub.state_endpoint(), 3);
  const WorkerRank w0{"ep", 0}, w1{"ep", 1}, w2{"ep", 2};
  ASSERT_TRUE(wait_for(
      [&] { return idx->num_blocks(w0) == 2 && idx->num_blocks(w1) == 1 && idx->known(w2); }));
  EXPECT_EQ(idx->num_blocks(w2), 0);
  EXPECT_GE(sub.stats("ep").resyncs, 3u);
  // Each rank numbers its own events; live events land on their rank only.
  ASSERT_TRUE(wait_for([&] {
    r1->on_stored(31, blocks({32}));
    return idx->num_blocks(w1) >= 2;
  }));
  r0->on_removed(std::vector<uint64_t>{22});
  const std::vector<uint64_t> chain1 = {31, 32}, chain0 = {21, 22};
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(w0) == 1; }));
  EXPECT_EQ(idx->overlap(w0, chain0), 1);
  EXPECT_EQ(idx->overlap(w1, chain0), 0);
  EXPECT_EQ(idx->overlap(w0, chain1), 0);
  EXPECT_EQ(idx->last_event_id(w0), pub.state(0).last_event_id);
  EXPECT_EQ(idx->last_event_id(w1), pub.state(1).last_event_id);
  EXPECT_NE(pub.state(0).last_event_id, 0u);
  EXPECT_EQ(pub.state(2).last_event_id, 0u);
  r1->on_cleared();
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(w1) == 0; }));
  EXPECT_EQ(idx->num_blocks(w0), 1);
  sub.remove_worker("ep");
  ASSERT_TRUE(wait_for([&] { return !idx->known(w0) && !idx->known(w1) && !idx->known(w2); }));
}

// A hand-driven worker: PUB for events, ROUTER answering state queries with what the test says.
struct FakeWorker {
  zmq::context_t ctx{1};
  zmq::socket_t pub{ctx, zmq::socket_type::pub};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string pub_ep, router_ep;
  FakeWorker() {
    pub.bind("tcp://127.0.0.1:0");
    router.bind("tcp://127.0.0.1:0");
    pub_ep = runtime::connectable_endpoint(pub, "127.0.0.1");
    router_ep = runtime::connectable_endpoint(router, "127.0.0.1");
    router.set(zmq::sockopt::rcvtimeo, 5000);
  }
  void send(const runtime::KvEvent& e) {
    pub.send(zmq::buffer(runtime::encode_kv_event(e)), zmq::send_flags::none);
  }
  // Waits for one state query and answers it with `s`; false on timeout.
  bool answer(const runtime::KvState& s) {
    zmq::message_t id, q;
    if (!router.recv(id)) return false;
    if (!router.recv(q)) return false;
    EXPECT_EQ(runtime::decode_kv_state_query(q.to_string_view()), 0);
    router.send(id, zmq::send_flags::sndmore);
    router.send(zmq::buffer(runtime::encode_kv_state(s)), zmq::send_flags::none);
    return true;
  }
};

runtime::KvEvent stored(uint64_t id, std::optional<uint64_t> parent,
                        std::initializer_list<uint64_t> hs) {
  runtime::KvEvent e;
  e.event_id = id;
  e.kind = runtime::KvEventKind::kStored;
  e.parent_hash = parent;
  e.blocks = blocks(hs);
  return e;
}

TEST(KvEventPlane, GapTriggersResyncFromTheWorkersState) {
  FakeWorker fw;
  auto idx = std::make_shared<KvIndex>();
  KvEventSubscriber sub(idx);
  sub.add_worker("w", fw.pub_ep, fw.router_ep);
  const WorkerRank w{"w", 0};
  // First sight: the subscriber asks for the state.
  ASSERT_TRUE(fw.answer({5, 0, {1, 2}}));
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(w) == 2; }));
  // Event 6 in order (repeated until the SUB connection is up; repeats are stale, ignored).
  ASSERT_TRUE(wait_for([&] {
    fw.send(stored(6, 2, {3}));
    return idx->num_blocks(w) == 3;
  }));
  EXPECT_EQ(sub.stats("w").gaps, 0u);
  // Event 7 is lost; 8 arrives: a gap. Nothing of 8 is applied until the state comes.
  fw.send(stored(8, 3, {4}));
  ASSERT_TRUE(wait_for([&] { return sub.stats("w").gaps == 1; }));
  EXPECT_EQ(idx->num_blocks(w), 3);
  // Meanwhile event 9 arrives: buffered. The state is as of event 8 (7 stored 30, 8 stored 4).
  fw.send(stored(9, 4, {5}));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fw.answer({8, 0, {1, 2, 3, 30, 4}}));
  // After the state, buffered event 9 applies on top.
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(w) == 6; }));
  EXPECT_EQ(idx->last_event_id(w), 9u);
  EXPECT_EQ(idx->overlap(w, std::vector<uint64_t>{1, 2, 3, 4, 5}), 5);
  EXPECT_EQ(sub.stats("w").resyncs, 2u);
  // Another gap (10..19 lost): another resync.
  fw.send(stored(20, 5, {6}));
  ASSERT_TRUE(fw.answer({20, 0, {1}}));
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(w) == 1; }));
  EXPECT_EQ(idx->last_event_id(w), 20u);
}

TEST(KvEventPlane, UnansweredStateQueryIsRetried) {
  FakeWorker fw;
  auto idx = std::make_shared<KvIndex>();
  KvEventSubscriber sub(idx);
  sub.add_worker("w", fw.pub_ep, fw.router_ep);
  zmq::message_t id, q;
  ASSERT_TRUE(fw.router.recv(id));
  ASSERT_TRUE(fw.router.recv(q));  // first query: dropped on purpose
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(fw.answer({3, 0, {7}}));  // the retry
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 500ms);
  ASSERT_TRUE(wait_for([&] { return idx->num_blocks(WorkerRank{"w", 0}) == 1; }));
}

}  // namespace
}  // namespace wideserve::router
