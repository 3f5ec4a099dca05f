// The etcd v3 JSON-gateway client against a real etcd: base64, leases, KV, watch, failover.
#include <gtest/gtest.h>

#include <thread>

#include "etcd_test_server.h"
#include "runtime/etcd_client.h"

namespace wideserve::runtime {
namespace {

using namespace std::chrono_literals;
using testing::EtcdServer;

TEST(EtcdBase64, RoundTrips) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("/services/a"), "L3NlcnZpY2VzL2E=");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37)
    EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
  EXPECT_THROW(base64_decode("Zm9v!"), Error);
  EXPECT_THROW(base64_decode("Z"), Error);
}

TEST(EtcdBase64, PrefixEnd) {
  EXPECT_EQ(etcd_prefix_end("/a/"), "/a0");
  EXPECT_EQ(etcd_prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(etcd_prefix_end(""), std::string(1, '\0'));
}

TEST(EtcdClient, LeaseKvAndRevoke) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  const int64_t lease = c.lease_grant(30);
  EXPECT_NE(lease, 0);
  const int64_t rev = c.put("/t/a", "value-a", lease);
  EXPECT_GT(rev, 0);
  c.put("/t/b", std::string("bin\0ary", 7));
  c.put("/u/c", "other prefix");
  EtcdRange r = c.range_prefix("/t/");
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_GE(r.revision, rev);
  EXPECT_EQ(r.kvs[0].key, "/t/a");
  EXPECT_EQ(r.kvs[0].value, "value-a");
  EXPECT_EQ(r.kvs[0].lease, lease);
  EXPECT_EQ(r.kvs[1].value, std::string("bin\0ary", 7));
  EXPECT_EQ(r.kvs[1].lease, 0);
  EXPECT_GT(c.lease_keepalive(lease), 0);

  c.lease_revoke(lease);
  r = c.range_prefix("/t/");
  ASSERT_EQ(r.kvs.size(), 1u);  // the leased key went with its lease
  EXPECT_EQ(r.kvs[0].key, "/t/b");
  EXPECT_LE(c.lease_keepalive(lease), 0);
  c.lease_revoke(lease);  // unknown lease: not an error
  try {
    c.put("/t/x", "v", lease);
    ADD_FAILURE() << "put under a revoked lease succeeded";
  } catch (const EtcdError& e) {
    EXPECT_EQ(e.grpc_code(), 5) << e.what();
    EXPECT_NE(std::string(e.what()).find("lease not found"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.delete_key("/t/b"), 1);
  EXPECT_EQ(c.delete_key("/t/b"), 0);
  EXPECT_TRUE(c.range_prefix("/t/").kvs.empty());
}

TEST(EtcdClient, LeaseExpires) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  const int64_t lease = c.lease_grant(2);
  c.put("/t/short", "v", lease);
  auto end = std::chrono::steady_clock::now() + 8s;
  while (!c.range_prefix("/t/").kvs.empty()) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "key outlived its 2 s lease";
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_LE(c.lease_keepalive(lease), 0);
}

TEST(EtcdClient, WatchStreamsPutsAndDeletes) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  c.put("/w/before", "1");
  EtcdRange r = c.range_prefix("/w/");
  EtcdWatch w(c, "/w/", r.revision + 1, -1);
  std::thread writer([&] {
    EtcdClient c2({{"127.0.0.1", etcd.port()}});
    c2.put("/w/x", "hello");
    c2.put("/other", "ignored");
    c2.delete_key("/w/before");
  });
  std::vector<EtcdWatch::Event> got;
  while (got.size() < 2) {
    auto evs = w.next();
    got.insert(got.end(), evs.begin(), evs.end());
  }
  writer.join();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].deleted);
  EXPECT_EQ(got[0].kv.key, "/w/x");
  EXPECT_EQ(got[0].kv.value, "hello");
  EXPECT_GT(got[0].kv.mod_revision, r.revision);
  EXPECT_TRUE(got[1].deleted);
  EXPECT_EQ(got[1].kv.key, "/w/before");

  // A killed server breaks the stream with kUnavailable instead of hanging.
  std::thread killer([&] {
    std::this_thread::sleep_for(200ms);
    etcd.kill();
  });
  try {
    for (;;) w.next();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
  }
  killer.join();
}

TEST(EtcdClient, WatchFromCompactedRevisionIsCanceled) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  EtcdClient c({{"127.0.0.1", etcd.port()}});
  c.put("/w/a", "1");
  const int64_t rev = c.put("/w/a", "2");
  c.call("/v3/kv/compaction", {{"revision", std::to_string(rev)}});
  try {
    EtcdWatch w(c, "/w/", 1, -1);
    w.next();
    ADD_FAILURE() << "watch from a compacted revision was not canceled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("compacted"), std::string::npos) << e.what();
  }
}

TEST(EtcdClient, FailsOverInOrder) {
  EtcdServer etcd;
  WS_REQUIRE_ETCD(etcd);
  const uint16_t dead = testing::free_port();
  EtcdClient c({{"127.0.0.1", dead}, {"127.0.0.1", etcd.port()}});
  EXPECT_EQ(c.current_endpoint(), "127.0.0.1:" + std::to_string(dead));
  c.put("/f/a", "1");
  EXPECT_EQ(c.current_endpoint(), etcd.endpoint());
  EXPECT_EQ(c.range_prefix("/f/").kvs.size(), 1u);

  EtcdClient none({{"127.0.0.1", dead}, {"127.0.0.1", testing::free_port()}}, 500ms);
  try {
    none.range_prefix("/f/");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("no etcd endpoint answered"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace wideserve::runtime
