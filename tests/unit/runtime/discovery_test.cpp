// Discovery: URL parsing and the embedded registry/registration over TCP on 127.0.0.1.
#include <gtest/gtest.h>
#include <zmq.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/check.h"
#include "runtime/codec.h"
#include "runtime/discovery.h"

namespace wideserve::runtime {
namespace {

using namespace std::chrono_literals;

template <typename F>
bool wait_until(F pred, std::chrono::milliseconds timeout = 5000ms) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

void expect_error(const std::string& url, ErrorCode code, const std::string& needle) {
  try {
    parse_discovery_url(url);
    ADD_FAILURE() << "accepted " << url;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << url << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DiscoveryUrl, Parses) {
  DiscoveryUrl d = parse_discovery_url(kDefaultDiscoveryUrl);
  EXPECT_EQ(d.host, "127.0.0.1");
  EXPECT_EQ(d.port, 29400);
  EXPECT_EQ(d.tcp_endpoint(), "tcp://127.0.0.1:29400");
  EXPECT_EQ(d.to_string(), "embedded://127.0.0.1:29400");
  d = parse_discovery_url("frontend-0:31000");
  EXPECT_EQ(d.host, "frontend-0");
  EXPECT_EQ(d.port, 31000);
  d = parse_discovery_url("EMBEDDED://10.0.0.1");
  EXPECT_EQ(d.host, "10.0.0.1");
  EXPECT_EQ(d.port, kDefaultDiscoveryPort);
  d = parse_discovery_url("embedded://[::1]:5");
  EXPECT_EQ(d.host, "::1");
  EXPECT_EQ(d.tcp_endpoint(), "tcp://[::1]:5");
  EXPECT_EQ(parse_discovery_url("[fe80::1]:7").port, 7);
  EXPECT_EQ(parse_discovery_url("embedded://0.0.0.0:0").port, 0);
}

TEST(DiscoveryUrl, Rejects) {
  expect_error("nats://x:1", ErrorCode::kInvalidArgument, "--discovery");
  expect_error("", ErrorCode::kInvalidArgument, "--discovery");
  expect_error("localhost", ErrorCode::kInvalidArgument, "no port");
  expect_error("host:", ErrorCode::kInvalidArgument, "bad port");
  expect_error("host:99999", ErrorCode::kInvalidArgument, "bad port");
  expect_error("host:12a", ErrorCode::kInvalidArgument, "bad port");
  expect_error("embedded://", ErrorCode::kInvalidArgument, "no host");
  expect_error("embedded://h:1/path", ErrorCode::kInvalidArgument, "--discovery");
  expect_error("::1:5", ErrorCode::kInvalidArgument, "brackets");
  // etcd:// is its own backend (etcd_discovery_test.cpp).
  EXPECT_EQ(parse_discovery_url("etcd://10.0.0.1:2379").kind, DiscoveryUrl::Kind::kEtcd);
}

WorkerInfo info_for(const std::string& id, const std::string& endpoint) {
  WorkerInfo w;
  w.instance_id = id;
  w.model_name = "tiny";
  w.model_path = "/m";
  w.endpoint = endpoint;
  w.page_size = 16;
  return w;
}

// Records watcher events in order.
class Events {
 public:
  WatcherCallbacks callbacks(bool with_updates = true) {
    WatcherCallbacks cb;
    cb.on_added = [this](const WorkerInfo& w) { add("added " + w.instance_id + " " + w.endpoint); };
    cb.on_removed = [this](const WorkerInfo& w, const std::string& reason) {
      add("removed " + w.instance_id + ": " + reason);
    };
    if (with_updates)
      cb.on_updated = [this](const WorkerEntry& e) {
        std::lock_guard<std::mutex> lock(mu_);
        ++updates_;
        last_update_ = e;
      };
    return cb;
  }
  std::vector<std::string> list() {
    std::lock_guard<std::mutex> lock(mu_);
    return list_;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return list_.size();
  }
  int updates() {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_;
  }
  WorkerEntry last_update() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_update_;
  }

 private:
  void add(std::string s) {
    std::lock_guard<std::mutex> lock(mu_);
    list_.push_back(std::move(s));
  }
  std::mutex mu_;
  std::vector<std::string> list_;
  int updates_ = 0;
  WorkerEntry last_update_;
};

RegistrationOptions fast() {
  RegistrationOptions o;
  o.interval = 50ms;
  return o;
}

TEST(EmbeddedDiscovery, AddUpdateDrainUnregister) {
  Events ev;
  WatcherOptions wo;
  wo.ttl = 5000ms;  // removal below must come from Unregister, not expiry
  auto watcher = make_worker_watcher("embedded://127.0.0.1:0", wo, ev.callbacks());
  EXPECT_NE(watcher->url(), "embedded://127.0.0.1:0");
  std::atomic<int64_t> running{3};
  auto reg = make_worker_registration(
      watcher->url(), info_for("w1", "tcp://127.0.0.1:1111"),
      [&] {
        return WorkerLoad{running.load(), 1, 100, 10, 42};
      },
      fast());
  ASSERT_TRUE(wait_until([&] { return ev.size() == 1; }));
  EXPECT_EQ(ev.list()[0], "added w1 tcp://127.0.0.1:1111");
  ASSERT_TRUE(wait_until([&] { return reg->status().accepted; }));
  auto snap = watcher->snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].info.model_name, "tiny");
  EXPECT_EQ(snap[0].info.page_size, 16);
  EXPECT_EQ(snap[0].load.kv_pages_total, 100);
  EXPECT_FALSE(snap[0].draining);
  running = 7;
  ASSERT_TRUE(wait_until([&] { return ev.last_update().load.running == 7; }));
  EXPECT_GE(ev.updates(), 2);
  reg->set_draining(true);
  ASSERT_TRUE(wait_until([&] { return watcher->snapshot().at(0).draining; }, 1000ms));
  auto t0 = std::chrono::steady_clock::now();
  reg->stop();
  ASSERT_TRUE(wait_until([&] { return ev.size() == 2; }, 2000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
  EXPECT_EQ(ev.list()[1], "removed w1: worker w1 unregistered");
  EXPECT_TRUE(watcher->snapshot().empty());
  reg->stop();  // idempotent
  EXPECT_EQ(ev.size(), 2u);
}

// A worker that sends heartbeats by hand (to simulate crashes and odd peers).
class RawWorker {
 public:
  explicit RawWorker(const std::string& url) : sock_(ctx_, zmq::socket_type::dealer) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.connect(parse_discovery_url(url).tcp_endpoint());
  }
  void beat(const WorkerInfo& info) {
    std::string b = encode(Heartbeat{info, {}, false});
    sock_.send(zmq::buffer(b));
  }
  void send_raw(const std::string& bytes) { sock_.send(zmq::buffer(bytes)); }
  // Waits for one ack.
  HeartbeatAck ack() {
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq::poll(&item, 1, 2000ms), 1);
    zmq::message_t m;
    EXPECT_TRUE(sock_.recv(m));
    return std::get<HeartbeatAck>(decode(m.to_string_view()));
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t sock_;
};

TEST(EmbeddedDiscovery, SilentWorkerExpiresAfterTtl) {
  Events ev;
  WatcherOptions wo;
  wo.ttl = 300ms;
  auto watcher = make_worker_watcher("embedded://127.0.0.1:0", wo, ev.callbacks(false));
  RawWorker raw(watcher->url());
  auto t0 = std::chrono::steady_clock::now();
  raw.beat(info_for("crashy", "tcp://127.0.0.1:2222"));
  EXPECT_TRUE(raw.ack().accepted);
  ASSERT_TRUE(wait_until([&] { return ev.size() == 2; }, 2000ms));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1000ms);
  EXPECT_EQ(ev.list()[1],
            "removed crashy: worker crashy at tcp://127.0.0.1:2222 missed heartbeats for 0.3 s");
  EXPECT_TRUE(watcher->snapshot().empty());
}

TEST(EmbeddedDiscovery, LiveWorkerSurvivesManyTtls) {
  Events ev;
  WatcherOptions wo;
  wo.ttl = 300ms;
  auto watcher = make_worker_watcher("embedded://127.0.0.1:0", wo, ev.callbacks(false));
  auto reg =
      make_worker_registration(watcher->url(), info_for("w", "tcp://127.0.0.1:3"), nullptr, fast());
  ASSERT_TRUE(wait_until([&] { return ev.size() == 1; }));
  std::this_thread::sleep_for(1000ms);
  EXPECT_EQ(ev.size(), 1u);
  EXPECT_EQ(watcher->snapshot().size(), 1u);
  EXPECT_GT(reg->status().acks, 10u);
}

TEST(EmbeddedDiscovery, NewEndpointIsRemovePlusAdd) {
  Events ev;
  auto watcher = make_worker_watcher("embedded://127.0.0.1:0", {}, ev.callbacks(false));
  RawWorker raw(watcher->url());
  raw.beat(info_for("a", "tcp://h:1"));
  raw.ack();
  raw.beat(info_for("a", "tcp://h:1"));  // same: just a heartbeat
  raw.ack();
  raw.beat(info_for("a", "tcp://h:2"));
  raw.ack();
  // Another instance on a registered endpoint replaces it (the old process is gone).
  raw.beat(info_for("b", "tcp://h:2"));
  raw.ack();
  ASSERT_TRUE(wait_until([&] { return ev.size() == 5; }));
  std::vector<std::string> want = {
      "added a tcp://h:1", "removed a: worker a re-registered at tcp://h:2 (was tcp://h:1)",
      "added a tcp://h:2", "removed a: worker a at tcp://h:2 replaced by b", "added b tcp://h:2"};
  EXPECT_EQ(ev.list(), want);
  ASSERT_EQ(watcher->snapshot().size(), 1u);
  EXPECT_EQ(watcher->snapshot()[0].info.instance_id, "b");
  // Garbage and incomplete heartbeats are dropped or refused, never fatal.
  raw.send_raw("junk");
  raw.beat(info_for("", "tcp://h:9"));
  EXPECT_FALSE(raw.ack().accepted);
  raw.beat(info_for("c", "tcp://h:3"));
  EXPECT_TRUE(raw.ack().accepted);
  EXPECT_EQ(watcher->snapshot().size(), 2u);
}

TEST(EmbeddedDiscovery, AdmitCanRefuse) {
  Events ev;
  WatcherCallbacks cb = ev.callbacks(false);
  cb.admit = [](const WorkerInfo& w) {
    return w.model_name == "tiny" ? std::string("model tiny is served with another tokenizer")
                                  : std::string();
  };
  auto watcher = make_worker_watcher("embedded://127.0.0.1:0", {}, cb);
  auto reg = make_worker_registration(watcher->url(), info_for("w", "tcp://h:1"), nullptr, fast());
  ASSERT_TRUE(wait_until([&] { return reg->status().acks >= 2; }));
  RegistrationStatus st = reg->status();
  EXPECT_FALSE(st.accepted);
  EXPECT_EQ(st.error, "model tiny is served with another tokenizer");
  EXPECT_TRUE(watcher->snapshot().empty());
  EXPECT_EQ(ev.size(), 0u);
}

TEST(EmbeddedDiscovery, WorkerFirstAndRegistryRestart) {
  // Find a free port, then start the worker before any registry listens there.
  std::string url;
  {
    auto probe = make_worker_watcher("embedded://127.0.0.1:0", {}, {});
    url = probe->url();
  }
  auto reg = make_worker_registration(url, info_for("w", "tcp://h:1"), nullptr, fast());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(reg->status().acks, 0u);
  for (int round = 0; round < 2; ++round) {
    Events ev;
    auto watcher = make_worker_watcher(url, {}, ev.callbacks(false));
    ASSERT_TRUE(wait_until([&] { return ev.size() == 1; }, 3000ms)) << "round " << round;
    EXPECT_EQ(ev.list()[0], "added w tcp://h:1");
    uint64_t acks = reg->status().acks;
    ASSERT_TRUE(wait_until([&] { return reg->status().acks > acks; }));
    EXPECT_TRUE(reg->status().accepted);
  }  // the registry goes away (a frontend restart); the worker keeps beating
}

TEST(EmbeddedDiscovery, RegistryBindConflictIsUnavailable) {
  auto a = make_worker_watcher("embedded://127.0.0.1:0", {}, {});
  try {
    auto b = make_worker_watcher(a->url(), {}, {});
    ADD_FAILURE() << "bound twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("--discovery"), std::string::npos);
  }
}

}  // namespace
}  // namespace wideserve::runtime
