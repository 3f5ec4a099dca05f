// FrontendConfig: the seed's frontend command, defaults, validation, support policy.
#include <gtest/gtest.h>

#include "config/frontend_config.h"
#include "config_test_util.h"

namespace wideserve::config {
namespace {

using testing::error_of;

FrontendConfig parse(const std::vector<std::string>& args) {
  FrontendConfig cfg;
  testing::parse_args(args, cfg, add_frontend_flags);
  return cfg;
}

std::optional<Error> finalize_error(const std::vector<std::string>& args, const EnvMap& env = {}) {
  FrontendConfig cfg = parse(args);
  return error_of([&] { finalize_frontend_config(cfg, env); });
}

TEST(FrontendConfig, SeedCommand) {
  // python3 -m dynamo.frontend --http-port=8000
  FrontendConfig c = parse({"--http-port=8000"});
  finalize_frontend_config(c, {});
  EXPECT_EQ(c.http_port, 8000);
  EXPECT_EQ(c.http_host, "0.0.0.0");
  EXPECT_EQ(c.router_mode, "round-robin");
  EXPECT_EQ(c.discovery_address.host, "127.0.0.1");
  EXPECT_EQ(c.discovery_address.port, 29400);
  EXPECT_EQ(c.worker_ttl_ms, 3000);
  EXPECT_EQ(c.max_concurrent_requests, 4096);
  EXPECT_EQ(c.max_body_bytes, 32 << 20);
  EXPECT_GE(c.http_threads, 1);
  EXPECT_LE(c.http_threads, 4);
  EXPECT_EQ(c.namespace_name, "dynamo");
  EXPECT_EQ(c.migration_limit, 0);
}

TEST(FrontendConfig, AcceptedDynamoFlags) {
  FrontendConfig c = parse({"--http-host",           "127.0.0.1",
                            "--http-port",           "9000",
                            "--router-mode",         "random",
                            "--namespace",           "prod",
                            "--kv-cache-block-size", "64",
                            "--http-threads",        "2",
                            "--migration-limit",     "0",
                            "--log-level",           "debug",
                            "--discovery",           "embedded://10.0.0.2:29401",
                            "--worker-ttl-ms",       "500"});
  finalize_frontend_config(c, {{"WIDESERVE_DISCOVERY", "embedded://10.9.9.9:1"}});
  EXPECT_EQ(c.router_mode, "random");
  EXPECT_EQ(c.kv_cache_block_size, 64);
  EXPECT_EQ(c.http_threads, 2);
  EXPECT_EQ(c.discovery_address.host, "10.0.0.2");  // the flag wins over the variable
  EXPECT_EQ(c.worker_ttl_ms, 500);
}

TEST(FrontendConfig, ValidationNamesTheFlag) {
  const std::vector<std::vector<std::string>> cases = {
      {"--http-port", "70000"},
      {"--http-host", ""},
      {"--http-threads", "-1"},
      {"--max-body-bytes", "10"},
      {"--max-concurrent-requests", "0"},
      {"--router-mode", "least-loaded"},
      {"--discovery", "tcp://x:1"},
      {"--worker-ttl-ms", "0"},
      {"--namespace", ""},
      {"--kv-cache-block-size", "0"},
      {"--log-level", "loud"},
      {"--migration-limit", "-1"},
      {"--busy-threshold", "-0.5"},
      {"--busy-queue-limit", "-1"},
      {"--router-prefill-load-scale", "-1"},
      {"--router-temperature", "-0.1"},
  };
  for (const auto& args : cases) {
    auto err = finalize_error(args);
    ASSERT_TRUE(err) << args[0] << " " << args[1] << " accepted";
    EXPECT_EQ(err->code(), ErrorCode::kInvalidArgument) << err->what();
    EXPECT_NE(std::string(err->what()).find(args[0]), std::string::npos) << err->what();
  }
}

TEST(FrontendConfig, KvRoutingAndBusyFlags) {
  FrontendConfig d = parse({});
  finalize_frontend_config(d, {});
  EXPECT_DOUBLE_EQ(d.router_prefill_load_scale, 4.0);
  EXPECT_DOUBLE_EQ(d.router_temperature, 0.0);
  EXPECT_FALSE(d.busy_threshold);
  EXPECT_FALSE(d.busy_queue_limit);
  FrontendConfig c = parse({"--router-mode", "kv", "--router-prefill-load-scale", "2.5",
                            "--router-temperature", "0.5", "--busy-threshold", "0.9",
                            "--busy-queue-limit", "8"});
  finalize_frontend_config(c, {});
  EXPECT_EQ(c.router_mode, "kv");
  EXPECT_DOUBLE_EQ(c.router_prefill_load_scale, 2.5);
  EXPECT_DOUBLE_EQ(c.router_temperature, 0.5);
  EXPECT_EQ(c.busy_threshold, 0.9);
  EXPECT_EQ(c.busy_queue_limit, 8);
}

TEST(FrontendConfig, UnknownFlagIsNamed) {
  FrontendConfig c;
  try {
    testing::parse_args({"--http-port", "8000", "--tp-size", "8"}, c, add_frontend_flags);
    FAIL() << "unknown flag accepted";
  } catch (const CLI::ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("--tp-size"), std::string::npos) << e.what();
  }
}

TEST(FrontendConfig, UnknownWideserveVariableWarns) {
  FrontendConfig c = parse({});
  finalize_frontend_config(c, {{"WIDESERVE_TYPO", "1"}, {"SGLANG_X", "1"}});
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("WIDESERVE_TYPO"), std::string::npos);
}

}  // namespace
}  // namespace wideserve::config
