// Environment and address parsing helpers.
#include <gtest/gtest.h>

#include <cstdlib>

#include "config/discovery.h"
#include "config/env.h"
#include "config_test_util.h"

namespace wideserve::config {
namespace {

using testing::error_of;

TEST(Env, ParseInt) {
  EXPECT_EQ(parse_env_int("X", "100000", 1), 100000);
  EXPECT_EQ(parse_env_int("X", "0", 0), 0);
  for (const char* bad : {"", " 1", "1 ", "0x10", "1e3", "abc", "+-1"}) {
    auto err = error_of([&] { parse_env_int("MY_VAR", bad, 0); });
    ASSERT_TRUE(err) << "'" << bad << "' accepted";
    EXPECT_NE(std::string(err->what()).find("MY_VAR"), std::string::npos);
  }
  auto err = error_of([&] { parse_env_int("MY_VAR", "0", 1); });
  ASSERT_TRUE(err);
  EXPECT_NE(std::string(err->what()).find("MY_VAR must be >= 1 (got 0)"), std::string::npos)
      << err->what();
}

TEST(Env, ParseBool) {
  for (const char* t : {"1", "true", "True", "TRUE", "yes", "on"})
    EXPECT_TRUE(parse_env_bool("B", t));
  for (const char* f : {"0", "false", "False", "no", "off"}) EXPECT_FALSE(parse_env_bool("B", f));
  auto err = error_of([&] { parse_env_bool("MY_BOOL", "2"); });
  ASSERT_TRUE(err);
  EXPECT_NE(std::string(err->what()).find("MY_BOOL"), std::string::npos);
}

TEST(Env, ProcessEnvironment) {
  ::setenv("WIDESERVE_CONFIG_TEST_VAR", "a=b", 1);
  EnvMap env = process_env();
  EXPECT_EQ(env.at("WIDESERVE_CONFIG_TEST_VAR"), "a=b");
  EXPECT_EQ(env_value(env, "WIDESERVE_CONFIG_TEST_VAR"), "a=b");
  EXPECT_FALSE(env_value(env, "WIDESERVE_CONFIG_TEST_UNSET").has_value());
  ::unsetenv("WIDESERVE_CONFIG_TEST_VAR");
}

TEST(Discovery, Parse) {
  DiscoveryAddress d = parse_discovery("--discovery", "embedded://127.0.0.1:29400");
  EXPECT_EQ(d.scheme, "embedded");
  EXPECT_EQ(d.host, "127.0.0.1");
  EXPECT_EQ(d.port, 29400);
  d = parse_discovery("--discovery", "embedded://[::1]:5/");
  EXPECT_EQ(d.host, "::1");
  EXPECT_EQ(d.port, 5);
  d = parse_discovery("--discovery", "embedded://node3");
  EXPECT_EQ(d.host, "node3");
  EXPECT_EQ(d.port, 29400);
  d = parse_discovery("--discovery", "10.0.0.1:7");
  EXPECT_EQ(d.host, "10.0.0.1");
  EXPECT_EQ(d.port, 7);
  for (const char* bad : {"127.0.0.1", "", "embedded://[::1", "embedded://", "embedded://:1",
                          "embedded://h:", "embedded://h:x", "embedded://h:65536",
                          "embedded://::1:5", "file:///tmp/x"}) {
    auto err = error_of([&] { parse_discovery("--discovery", bad); });
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(err->what()).find("--discovery"), std::string::npos) << err->what();
  }
  // etcd:// is accepted (tests/unit/config/discovery_etcd_test.cpp).
  EXPECT_EQ(parse_discovery("--discovery", "etcd://10.0.0.1:2379").scheme, "etcd");
}

}  // namespace
}  // namespace wideserve::config
