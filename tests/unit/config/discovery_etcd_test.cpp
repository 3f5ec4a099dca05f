// --discovery etcd://... and --discovery-lease-ttl-s in the config tree.
#include <gtest/gtest.h>

#include "common/check.h"
#include "config/discovery.h"
#include "config/frontend_config.h"
#include "config/worker_config.h"
#include "config_test_util.h"

namespace wideserve::config {
namespace {

ErrorCode code_of(std::string_view value) {
  try {
    parse_discovery("--discovery", value);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--discovery"), std::string::npos) << e.what();
    return e.code();
  }
  ADD_FAILURE() << "accepted " << value;
  return ErrorCode::kInternal;
}

TEST(DiscoveryEtcd, Parses) {
  DiscoveryAddress d = parse_discovery("--discovery", "etcd://10.0.0.1:2379,etcd-b,[::1]:3");
  EXPECT_EQ(d.scheme, "etcd");
  ASSERT_EQ(d.endpoints.size(), 3u);
  EXPECT_EQ(d.host, "10.0.0.1");
  EXPECT_EQ(d.port, 2379);
  EXPECT_EQ(d.endpoints[1].host, "etcd-b");
  EXPECT_EQ(d.endpoints[1].port, kDefaultEtcdPort);
  EXPECT_EQ(d.endpoints[2].host, "::1");
  EXPECT_EQ(d.endpoints[2].port, 3);
  EXPECT_EQ(d.lease_ttl_s, 0);
  EXPECT_EQ(parse_discovery("--discovery", "etcd://h/?lease_ttl_s=7").lease_ttl_s, 7);
  for (const char* bad : {"etcd://", "etcd://h:0", "etcd://a,,b", "etcd://h?x=1",
                          "etcd://h?lease_ttl_s=0", "etcd://h:1:2", "etcd://[::1", "zk://h:1"})
    EXPECT_EQ(code_of(bad), ErrorCode::kInvalidArgument) << bad;
}

TEST(DiscoveryEtcd, LeaseTtlFlag) {
  std::vector<std::string> warnings;
  DiscoveryAddress d = parse_discovery("--discovery", "etcd://h:1");
  EXPECT_EQ(apply_discovery_lease_ttl("etcd://h:1", d, std::nullopt, warnings), "etcd://h:1");
  EXPECT_EQ(d.lease_ttl_s, kDefaultDiscoveryLeaseTtlS);
  d = parse_discovery("--discovery", "etcd://h:1");
  EXPECT_EQ(apply_discovery_lease_ttl("etcd://h:1", d, 3, warnings), "etcd://h:1?lease_ttl_s=3");
  EXPECT_EQ(d.lease_ttl_s, 3);
  d = parse_discovery("--discovery", "etcd://h:1?lease_ttl_s=3");
  EXPECT_EQ(apply_discovery_lease_ttl("etcd://h:1?lease_ttl_s=3", d, 3, warnings),
            "etcd://h:1?lease_ttl_s=3");
  EXPECT_THROW(apply_discovery_lease_ttl("etcd://h:1?lease_ttl_s=3", d, 4, warnings), Error);
  EXPECT_THROW(apply_discovery_lease_ttl("etcd://h:1", d, 0, warnings), Error);
  EXPECT_TRUE(warnings.empty());
  d = parse_discovery("--discovery", "embedded://h:1");
  EXPECT_EQ(apply_discovery_lease_ttl("embedded://h:1", d, 5, warnings), "embedded://h:1");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("etcd:// discovery only"), std::string::npos);
}

TEST(DiscoveryEtcd, WorkerAndFrontendFlags) {
  WorkerConfig w;
  testing::parse_args({"--model-path", "/m", "--discovery", "etcd://127.0.0.1:2379",
                       "--discovery-lease-ttl-s", "4"},
                      w, add_worker_flags);
  finalize_worker_config(w, EnvMap{});
  EXPECT_EQ(w.discovery, "etcd://127.0.0.1:2379?lease_ttl_s=4");
  EXPECT_EQ(w.discovery_address.lease_ttl_s, 4);

  FrontendConfig f;
  testing::parse_args({"--discovery", "etcd://a,b:2"}, f, add_frontend_flags);
  finalize_frontend_config(f, EnvMap{});
  EXPECT_EQ(f.discovery, "etcd://a,b:2");
  EXPECT_EQ(f.discovery_address.endpoints.size(), 2u);
  EXPECT_EQ(f.discovery_address.lease_ttl_s, kDefaultDiscoveryLeaseTtlS);
}

}  // namespace
}  // namespace wideserve::config
