// etcd discovery against a real etcd: URL parsing, the record, registration and watch, lease
// expiry, revoke, a lost lease, admission refusals, failover, and etcd restarts.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "etcd_test_server.h"
#include "runtime/discovery.h"
#include "runtime/etcd_discovery.h"

namespace wideserve::runtime {
namespace {

using namespace std::chrono_literals;
using testing::EtcdServer;

template <typename F>
bool wait_until(F pred, std::chrono::milliseconds timeout = 10000ms) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

WorkerInfo info_for(const std::string& id, const std::string& endpoint,
                    const std::string& model = "tiny") {
  WorkerInfo w;
  w.instance_id = id;
  w.model_name = model;
  w.model_path = "/models/" + model;
  w.endpoint = endpoint;
  w.context_length = 4096;
  w.page_size = 16;
  w.kv_capacity_tokens = 16384;
  w.vocab_size = 1000;
  w.dp_size = 2;
  w.bootstrap_host = "10.0.0.9";
  w.bootstrap_port = 8998;
  return w;
}

// Records watcher callbacks.
struct Recorder {
  std::mutex mu;
  std::vector<std::string> added, removed, reasons;
  std::vector<WorkerEntry> updates;
  std::string refuse_model;

  WatcherCallbacks callbacks() {
    WatcherCallbacks cb;
    cb.on_added = [this](const WorkerInfo& w) {
      std::lock_guard<std::mutex> l(mu);
      added.push_back(w.instance_id);
    };
    cb.on_removed = [this](const WorkerInfo& w, const std::string& why) {
      std::lock_guard<std::mutex> l(mu);
      removed.push_back(w.instance_id);
      reasons.push_back(why);
    };
    cb.on_updated = [this](const WorkerEntry& e) {
      std::lock_guard<std::mutex> l(mu);
      updates.push_back(e);
    };
    cb.admit = [this](const WorkerInfo& w) -> std::string {
      return w.model_name == refuse_model ? "model refused by test" : "";
    };
    return cb;
  }
  size_t count(const std::vector<std::string>& v, const std::string& id) {
    std::lock_guard<std::mutex> l(mu);
    return std::count(v.begin(), v.end(), id);
  }
  std::string last_reason() {
    std::lock_guard<std::mutex> l(mu);
    return reasons.empty() ? "" : reasons.back();
  }
};

bool has_worker(const WorkerWatcher& w, const std::string& id) {
  for (const auto& e : w.snapshot())
    if (e.info.instance_id == id) return true;
  return false;
}

TEST(EtcdDiscoveryUrl, Parses) {
  DiscoveryUrl u = parse_discovery_url("etcd://10.0.0.1:2379,etcd-b,[::1]:3?lease_ttl_s=4");
  EXPECT_EQ(u.kind, DiscoveryUrl::Kind::kEtcd);
  ASSERT_EQ(u.endpoints.size(), 3u);
  EXPECT_EQ(u.endpoints[0].host, "10.0.0.1");
  EXPECT_EQ(u.endpoints[1].host, "etcd-b");
  EXPECT_EQ(u.endpoints[1].port, kDefaultEtcdPort);
  EXPECT_EQ(u.endpoints[2].host, "::1");
  EXPECT_EQ(u.endpoints[2].port, 3);
  EXPECT_EQ(u.lease_ttl_s, 4);
  EXPECT_EQ(u.to_string(), "etcd://10.0.0.1:2379,etcd-b:2379,[::1]:3?lease_ttl_s=4");
  EXPECT_EQ(parse_discovery_url(u.to_string()).to_string(), u.to_string());
  u = parse_discovery_url("ETCD://h");
  EXPECT_EQ(u.lease_ttl_s, kDefaultLeaseTtlS);
  EXPECT_EQ(u.to_string(), "etcd://h:2379");
  for (const char* bad : {"etcd://", "etcd://h:0", "etcd://h,", "etcd://h?ttl=3",
                          "etcd://h?lease_ttl_s=0", "etcd://h?lease_ttl_s=x", "etcd://h:99999",
                          "etcd://::1", "embedded://a:1,b:2", "nats://x:1"}) {
    try {
      parse_discovery_url(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find("--discovery"), std::string::npos) << e.what();
    }
  }
}

TEST(EtcdRecord, RoundTripsAndChecksVersion) {
  WorkerRecord r{info_for("h:1:ab", "tcp://127.0.0.1:5000"), {}, true};
  r.info.role = WorkerRole::kPrefill;
  r.info.reasoning_parser = "deepseek_r1";
  r.load = {3, 4, 100, 50, 777};
  WorkerRecord back = decode_worker_record(encode_worker_record(r));
  EXPECT_EQ(back.info.instance_id, "h:1:ab");
  EXPECT_EQ(back.info.endpoint, "tcp://127.0.0.1:5000");
  EXPECT_EQ(back.info.role, WorkerRole::kPrefill);
  EXPECT_EQ(back.info.dp_size, 2);
  EXPECT_EQ(back.info.page_size, 16);
  EXPECT_EQ(back.info.kv_capacity_tokens, 16384);
  EXPECT_EQ(back.info.bootstrap_port, 8998);
  EXPECT_EQ(back.info.reasoning_parser, "deepseek_r1");
  EXPECT_EQ(back.load.generated_tokens, 777);
  EXPECT_EQ(back.load.kv_pages_used, 50);
  EXPECT_TRUE(back.draining);
  auto j = nlohmann::json::parse(encode_worker_record(r));
  j["protocol_version"] = kProtocolVersion + 1;
  EXPECT_THROW(decode_worker_record(j.dump()), Error);
  j = nlohmann::json::parse(encode_worker_record(r));
  j.erase("endpoint");
  EXPECT_THROW(decode_worker_record(j.dump()), Error);
  EXPECT_THROW(decode_worker_record("not json"), Error);
  EXPECT_EQ(etcd_worker_key("h:1:ab"), "/services/wideserve/workers/h:1:ab");
}

TEST(EtcdDiscovery, RegisterWatchUpdateAndRevoke) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  Recorder rec;
  auto watcher = make_worker_watcher(etcd.url(), {}, rec.callbacks());
  EXPECT_EQ(watcher->url(), etcd.url());
  std::atomic<int64_t> tokens{0};
  RegistrationOptions ro;
  ro.interval = 50ms;  // asks for more than etcd gets: load is put at most once a second
  auto reg = make_worker_registration(
      etcd.url(3), info_for("w1", "tcp://127.0.0.1:7001"),
      [&] {
        WorkerLoad l;
        l.running = 2;
        l.generated_tokens = ++tokens;  // changes every call
        return l;
      },
      ro);
  ASSERT_TRUE(wait_until([&] { return has_worker(*watcher, "w1"); }));
  EXPECT_EQ(rec.count(rec.added, "w1"), 1u);
  EXPECT_TRUE(wait_until([&] { return reg->status().accepted; }));

  // The key: JSON under a lease.
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  EtcdRange r = c.range_prefix(kEtcdWorkerPrefix);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, "/services/wideserve/workers/w1");
  EXPECT_NE(r.kvs[0].lease, 0);
  WorkerRecord stored = decode_worker_record(r.kvs[0].value);
  EXPECT_EQ(stored.info.kv_capacity_tokens, 16384);
  EXPECT_EQ(stored.load.running, 2);

  // Load updates: at most about one put a second however fast load changes.
  size_t before;
  {
    std::lock_guard<std::mutex> l(rec.mu);
    before = rec.updates.size();
  }
  std::this_thread::sleep_for(3000ms);
  size_t puts;
  {
    std::lock_guard<std::mutex> l(rec.mu);
    puts = rec.updates.size() - before;
    ASSERT_FALSE(rec.updates.empty());
    EXPECT_GT(rec.updates.back().load.generated_tokens, 1);
  }
  EXPECT_GE(puts, 2u);
  EXPECT_LE(puts, 4u);

  // Draining goes out at once.
  reg->set_draining(true);
  EXPECT_TRUE(wait_until(
      [&] {
        for (const auto& e : watcher->snapshot())
          if (e.info.instance_id == "w1" && e.draining) return true;
        return false;
      },
      800ms));

  // The lease outlives several TTLs while kept alive.
  std::this_thread::sleep_for(3500ms);
  EXPECT_TRUE(has_worker(*watcher, "w1"));
  EXPECT_EQ(rec.count(rec.removed, "w1"), 0u);

  // stop() revokes: removal comes long before the TTL would.
  auto t0 = std::chrono::steady_clock::now();
  reg->stop();
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.removed, "w1") == 1; }, 2000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_NE(rec.last_reason().find("deleted"), std::string::npos) << rec.last_reason();
  EXPECT_TRUE(c.range_prefix(kEtcdWorkerPrefix).kvs.empty());
  watcher->stop();
}

TEST(EtcdDiscovery, DeadWorkerGoesWithItsLease) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  Recorder rec;
  auto watcher = make_worker_watcher(etcd.url(), {}, rec.callbacks());
  // A worker that dies without a word (kill -9): its lease is granted but never renewed.
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  const int64_t lease = c.lease_grant(2);
  c.put(etcd_worker_key("dead"),
        encode_worker_record({info_for("dead", "tcp://127.0.0.1:7002"), {}, false}), lease);
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.added, "dead") == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.removed, "dead") == 1; }, 8000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5000ms);
  EXPECT_FALSE(has_worker(*watcher, "dead"));
  EXPECT_NE(rec.last_reason().find("lease expired"), std::string::npos) << rec.last_reason();
}

TEST(EtcdDiscovery, LostLeaseIsReacquired) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  Recorder rec;
  auto watcher = make_worker_watcher(etcd.url(), {}, rec.callbacks());
  auto reg_ptr =
      make_worker_registration(etcd.url(3), info_for("w2", "tcp://127.0.0.1:7003"), nullptr);
  auto* reg = dynamic_cast<EtcdRegistration*>(reg_ptr.get());
  ASSERT_NE(reg, nullptr);
  ASSERT_TRUE(wait_until([&] { return has_worker(*watcher, "w2") && reg->lease_id() != 0; }));
  const int64_t first = reg->lease_id();
  // Someone (an operator, a partition long enough) kills the lease behind the worker's back.
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  c.lease_revoke(first);
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.removed, "w2") == 1; }, 3000ms));
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.added, "w2") == 2; }, 5000ms));
  // The watcher may see the new key before the registration thread records it.
  EXPECT_TRUE(wait_until([&] { return reg->registrations() == 2; }, 2000ms));
  EXPECT_TRUE(wait_until([&] { return reg->lease_id() != first && reg->lease_id() != 0; }, 2000ms));
  EXPECT_TRUE(has_worker(*watcher, "w2"));
}

TEST(EtcdDiscovery, RefusedWorkerIsIgnoredUntilItRegistersAgain) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  Recorder rec;
  rec.refuse_model = "bad";
  auto watcher = make_worker_watcher(etcd.url(), {}, rec.callbacks());
  RegistrationOptions ro;
  ro.interval = 10ms;
  std::atomic<int64_t> n{0};
  auto bad = make_worker_registration(
      etcd.url(3), info_for("b1", "tcp://127.0.0.1:7004", "bad"),
      [&] {
        WorkerLoad l;
        l.generated_tokens = ++n;
        return l;
      },
      ro);
  auto good =
      make_worker_registration(etcd.url(3), info_for("g1", "tcp://127.0.0.1:7005"), nullptr);
  ASSERT_TRUE(wait_until([&] { return has_worker(*watcher, "g1"); }));
  std::this_thread::sleep_for(2500ms);  // load puts of b1 arrive meanwhile
  EXPECT_FALSE(has_worker(*watcher, "b1"));
  EXPECT_EQ(rec.count(rec.added, "b1"), 0u);
  EXPECT_EQ(watcher->snapshot().size(), 1u);
}

TEST(EtcdDiscovery, FailsOverToTheNextEndpoint) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  const std::string url = "etcd://127.0.0.1:" + std::to_string(testing::free_port()) + "," +
                          etcd.endpoint() + "?lease_ttl_s=3";
  Recorder rec;
  auto watcher = make_worker_watcher(url, {}, rec.callbacks());
  auto reg = make_worker_registration(url, info_for("f1", "tcp://127.0.0.1:7006"), nullptr);
  EXPECT_TRUE(wait_until([&] { return has_worker(*watcher, "f1"); }));
}

TEST(EtcdDiscovery, SurvivesEtcdRestart) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  Recorder rec;
  auto watcher_ptr = make_worker_watcher(etcd.url(), {}, rec.callbacks());
  auto* watcher = dynamic_cast<EtcdWatcher*>(watcher_ptr.get());
  ASSERT_NE(watcher, nullptr);
  auto a = make_worker_registration(etcd.url(2), info_for("a", "tcp://127.0.0.1:7010"), nullptr);
  auto b = make_worker_registration(etcd.url(2), info_for("b", "tcp://127.0.0.1:7011"), nullptr);
  ASSERT_TRUE(wait_until([&] { return watcher->snapshot().size() == 2; }));
  const uint64_t syncs = watcher->syncs();

  etcd.kill();
  // While etcd is down: b dies (its revoke cannot reach etcd), c starts.
  b->stop();
  auto c = make_worker_registration(etcd.url(2), info_for("c", "tcp://127.0.0.1:7012"), nullptr);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(watcher->snapshot().size(), 2u);  // the frontend keeps what it knew
  etcd.start();
  ASSERT_FALSE(HasFatalFailure());

  // The watch resumes with a fresh range; c appears; b's lease expires (etcd restarts leases'
  // clocks on start) and b is removed; a stays registered throughout.
  EXPECT_TRUE(wait_until([&] { return watcher->syncs() > syncs; }));
  EXPECT_TRUE(wait_until([&] { return has_worker(*watcher, "c"); }));
  EXPECT_TRUE(wait_until([&] { return !has_worker(*watcher, "b"); }, 8000ms));
  EXPECT_TRUE(has_worker(*watcher, "a"));
  EXPECT_EQ(rec.count(rec.removed, "a"), 0u);
  EXPECT_TRUE(wait_until([&] { return a->status().accepted && c->status().accepted; }));
}

TEST(EtcdDiscovery, ReregistersWhenEtcdLosesItsData) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  Recorder rec;
  auto watcher = make_worker_watcher(etcd.url(), {}, rec.callbacks());
  auto reg_ptr =
      make_worker_registration(etcd.url(2), info_for("d", "tcp://127.0.0.1:7020"), nullptr);
  auto* reg = dynamic_cast<EtcdRegistration*>(reg_ptr.get());
  ASSERT_TRUE(wait_until([&] { return has_worker(*watcher, "d"); }));
  etcd.kill();
  etcd.start(/*wipe_data=*/true);  // a new, empty etcd at the same address
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_TRUE(wait_until([&] { return reg->registrations() == 2; }));
  EXPECT_TRUE(wait_until([&] { return has_worker(*watcher, "d"); }));
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  EXPECT_TRUE(wait_until([&] { return c.range_prefix(kEtcdWorkerPrefix).kvs.size() == 1; }));
  // The frontend never dropped the live worker while its key was gone.
  EXPECT_EQ(rec.count(rec.removed, "d"), 0u);
}

TEST(EtcdDiscovery, WorkerMissingAfterDataLossGoesAfterOneLeaseTtl) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  Recorder rec;
  auto watcher = make_worker_watcher(etcd.url(2), {}, rec.callbacks());
  auto live =
      make_worker_registration(etcd.url(2), info_for("live", "tcp://127.0.0.1:7030"), nullptr);
  auto dead =
      make_worker_registration(etcd.url(2), info_for("dead", "tcp://127.0.0.1:7031"), nullptr);
  ASSERT_TRUE(
      wait_until([&] { return has_worker(*watcher, "live") && has_worker(*watcher, "dead"); }));
  etcd.kill();
  dead->stop();  // dies while etcd is down: its revoke cannot reach etcd
  etcd.start(/*wipe_data=*/true);
  ASSERT_FALSE(HasFatalFailure());
  const auto t0 = std::chrono::steady_clock::now();
  // Kept while it might still re-register, removed once missing for the lease TTL (2 s).
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.removed, "dead") == 1; }, 8000ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 1500ms);
  EXPECT_TRUE(has_worker(*watcher, "live"));
  EXPECT_EQ(rec.count(rec.removed, "live"), 0u);
}

}  // namespace
}  // namespace wideserve::runtime
