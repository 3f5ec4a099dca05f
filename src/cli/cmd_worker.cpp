// `wideserve worker`: the seed's `python3 -m dynamo.sglang`. Runs an engine (the model, or the
// mock engine) behind the request plane and registers it with discovery.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <thread>

#include "cli/command.h"
#include "cli/ep_flags.h"
#include "cli/model_runner_factory.h"
#include "common/check.h"
#include "common/logging.h"
#include "config/worker_config.h"
#include "disagg/decode_coordinator.h"
#include "disagg/prefill_coordinator.h"
#include "dist/launch.h"
#include "engine/engine.h"
#include "engine/mock_engine.h"
#include "engine/model_runner.h"
#include "engine/multi_rank_engine.h"
#include "model/deepseek_model.h"
#include "model/model_config.h"
#include "runtime/kv_event_publisher.h"
#include "runtime/rank_wire.h"
#include "runtime/worker_service.h"

namespace wideserve::cli {
namespace {

double env_seconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  WS_CHECK_ARG(end && *end == 0 && x > 0, "{} must be a positive number of seconds (got '{}')",
               name, v);
  return x;
}

disagg::DisaggOptions disagg_options(const config::WorkerConfig& cfg) {
  disagg::DisaggOptions d;
  d.mode = cfg.disagg.mode;
  d.bind_host = cfg.host;
  d.advertise_host = cfg.advertise_host;
  d.bootstrap_port = static_cast<int32_t>(cfg.disagg.bootstrap_port);
  d.transfer_backend = cfg.disagg.transfer_backend;
  if (d.transfer_backend == "mooncake" || d.transfer_backend == "mooncake_tcp") {
    // SGLang's default; Mooncake is not on this system. Our UCX agent is what NIXL runs on.
    WS_LOG_INFO("not applicable on this system: --disaggregation-transfer-backend {}; using {}",
                d.transfer_backend, d.transfer_backend == "mooncake" ? "nixl (UCX)" : "tcp");
    d.transfer_backend = d.transfer_backend == "mooncake" ? "nixl" : "tcp";
  }
  d.agent_name = fmt::format("{}-{}", d.mode, runtime::make_instance_id());
  d.bootstrap_timeout_s = static_cast<double>(cfg.env.bootstrap_timeout_s);
  d.waiting_timeout_s = static_cast<double>(cfg.env.waiting_timeout_s);
  d.heartbeat_max_failure = cfg.env.heartbeat_max_failure;
  d.heartbeat_interval_s = env_seconds("WIDESERVE_DISAGGREGATION_HEARTBEAT_INTERVAL", 5.0);
  d.transfer_timeout_s = env_seconds("WIDESERVE_DISAGGREGATION_TRANSFER_TIMEOUT", 10.0);
  d.max_running_requests = cfg.engine.max_running_requests;
  return d;
}

// Wide EP: this process's ranks of one multi-rank engine (--tp-size N --dp-size N
// --enable-dp-attention). Node 0 leads (requests, discovery); nodes R > 0 follow it. `store`
// keeps node 0's rendezvous server alive.
std::unique_ptr<engine::MultiRankEngine> make_ep_engine(
    const config::WorkerConfig& cfg, int world, std::unique_ptr<dist::TcpStoreServer>& store,
    std::shared_ptr<runtime::KvEventPublisher> kv_events = nullptr) {
  WS_CHECK_CODE(kUnimplemented, cfg.device == "cpu",
                "wide EP (--tp-size {}) runs on the CPU backend only (--device cpu)", world);
  std::shared_ptr<model::DeepseekModel> m = model::DeepseekModel::load(cfg.model_path);
  dist::LaunchOptions lo;
  lo.world_size = world;
  lo.nnodes = static_cast<int>(cfg.parallel.nnodes);
  lo.node_rank = static_cast<int>(cfg.parallel.node_rank);
  lo.dist_init_addr = cfg.parallel.dist_init_addr;
  // A collective that waits longer than the step watchdog means a lost or wedged node.
  lo.timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.watchdog_timeout_s * 1e3));
  auto ranks = dist::launch_local_ranks(lo);
  store = std::move(ranks.server);
  int64_t max_tokens = 128;
  if (const char* v = std::getenv("SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK"); v && *v)
    max_tokens = config::parse_env_int("SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK", v, 1);
  engine::MultiRankOptions o;
  o.load_balance = engine::parse_load_balance_method(cfg.parallel.load_balance_method);
  o.ep = ep_options(cfg.parallel, cfg.moe, max_tokens);
  o.metrics_log_interval = cfg.engine.decode_log_interval;
  o.wire = runtime::request_plane_rank_wire();
  // Every rank's cache reports as its own DP rank (the kv router picks ranks, not just workers).
  if (kv_events)
    o.kv_event_sink = [kv_events](int rank) { return kv_events->sink(static_cast<int32_t>(rank)); };
  // Nodes R > 0: node 0 publishes for every rank (it publishes whenever the radix cache is on).
  o.forward_kv_events = cfg.parallel.node_rank > 0 && !cfg.engine.disable_radix_cache;
  engine::EngineConfig ec = cfg.engine;
  ec.kv_event_sink = nullptr;
  return std::make_unique<engine::MultiRankEngine>(ec, std::move(m), std::move(ranks.groups), o);
}

// Node R > 0 of a multi-node EP worker: runs its ranks until node 0 stops the engine.
int run_ep_follower(const config::WorkerConfig& cfg, int world) {
  std::unique_ptr<dist::TcpStoreServer> store;
  auto eng = make_ep_engine(cfg, world, store);
  WS_LOG_INFO("node {} of {}: following node 0 at {} (not registering with discovery)",
              cfg.parallel.node_rank, cfg.parallel.nnodes, cfg.parallel.dist_init_addr);
  std::atomic<bool> done{false};
  std::string why;
  std::thread waiter([&] {
    why = eng->wait_follower();
    done = true;
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  while (!done) {
    timespec ts{0, 200 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      // The ranks sit in collectives with node 0; they cannot leave cleanly on their own.
      WS_LOG_WARN("node {}: signal {}: leaving; node 0's engine fails without this node",
                  cfg.parallel.node_rank, sig);
      std::fflush(nullptr);
      std::_Exit(0);
    }
  }
  waiter.join();
  if (!why.empty()) {
    WS_LOG_CRITICAL("node {}: the expert-parallel engine failed: {}; exiting",
                    cfg.parallel.node_rank, why);
    return 1;
  }
  WS_LOG_INFO("node {}: node 0 stopped the engine", cfg.parallel.node_rank);
  return 0;
}

std::unique_ptr<engine::AsyncEngine> make_engine(
    const config::WorkerConfig& cfg, std::unique_ptr<dist::TcpStoreServer>& store,
    std::shared_ptr<runtime::KvEventPublisher> kv_events) {
  if (cfg.engine_kind == "mock") {
    WS_CHECK_CODE(kUnimplemented, cfg.disagg.mode == "null",
                  "--engine mock runs aggregated only (--disaggregation-mode {} needs a model)",
                  cfg.disagg.mode);
    engine::MockEngineConfig m;
    m.decode_step_ms = cfg.mock.decode_ms;
    m.prefill_tokens_per_s = cfg.mock.prefill_tokens_per_s;
    m.vocab_size = cfg.mock.vocab_size;
    m.context_length = 163840;
    // A model directory (for its tokenizer) may still give the vocabulary and context length.
    if (std::filesystem::exists(std::filesystem::path(cfg.model_path) / "config.json")) {
      auto mc = model::load_model_config(cfg.model_path);
      m.vocab_size = mc.vocab_size;
      m.context_length = mc.max_position_embeddings;
    }
    if (cfg.engine.context_length > 0) m.context_length = cfg.engine.context_length;
    m.max_running_requests = cfg.engine.max_running_requests;
    m.page_size = cfg.engine.page_size;
    if (cfg.engine.max_total_tokens > 0) m.max_total_tokens = cfg.engine.max_total_tokens;
    return std::make_unique<engine::MockEngine>(m);
  }
  if (const int world = ep_world_size(cfg.parallel, cfg.moe); world > 1) {
    return make_ep_engine(cfg, world, store, std::move(kv_events));
  }
  auto runner = make_model_runner(cfg);
  if (cfg.disagg.mode == "null")
    return std::make_unique<engine::Engine>(cfg.engine, std::move(runner));
  disagg::DisaggOptions d = disagg_options(cfg);
  return std::make_unique<engine::Engine>(
      cfg.engine, std::move(runner),
      [d](const engine::KvBufferInfo& kv) -> std::unique_ptr<engine::LoopHook> {
        if (d.mode == "prefill") return std::make_unique<disagg::PrefillCoordinator>(d, kv);
        return std::make_unique<disagg::DecodeCoordinator>(d, kv);
      });
}

int run_worker(config::WorkerConfig& cfg) {
  config::finalize_worker_config(cfg);
  resolve_device(cfg);
  set_log_level(cfg.log_level);
  config::log_worker_config_notes(cfg);
  // Signals are taken synchronously by the service; no other thread may receive them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  const int ep_world = cfg.engine_kind == "mock" ? 1 : ep_world_size(cfg.parallel, cfg.moe);
  if (ep_world > 1 && cfg.parallel.node_rank > 0) return run_ep_follower(cfg, ep_world);
  // KV events for KV-aware routing: every DP rank's prefix cache reports to this publisher (ranks
  // of other nodes through node 0's engine, which replays what their step reports carry).
  std::shared_ptr<runtime::KvEventPublisher> kv_events;
  if (cfg.engine_kind != "mock" && !cfg.engine.disable_radix_cache) {
    std::vector<int32_t> ranks(static_cast<size_t>(std::max(1, ep_world)));
    std::iota(ranks.begin(), ranks.end(), 0);
    kv_events = std::make_shared<runtime::KvEventPublisher>(cfg.host, cfg.advertise_host, ranks);
    if (ep_world == 1) cfg.engine.kv_event_sink = kv_events->sink(0);
  }
  std::unique_ptr<dist::TcpStoreServer> store;  // wide EP over several nodes: the rendezvous
  auto eng = make_engine(cfg, store, kv_events);
  runtime::WorkerInfo info;
  if (kv_events) {
    info.kv_events_endpoint = kv_events->events_endpoint();
    info.kv_state_endpoint = kv_events->state_endpoint();
  }
  info.model_name = cfg.served_model_name;
  info.model_path = std::filesystem::absolute(cfg.model_path).lexically_normal().string();
  info.role = cfg.disagg.mode == "prefill"  ? runtime::WorkerRole::kPrefill
              : cfg.disagg.mode == "decode" ? runtime::WorkerRole::kDecode
                                            : runtime::WorkerRole::kAggregated;
  if (info.role == runtime::WorkerRole::kPrefill) {
    info.bootstrap_host = cfg.advertise_host;
    info.bootstrap_port = static_cast<int32_t>(cfg.disagg.bootstrap_port);
  }
  info.context_length = eng->context_length();
  info.page_size = eng->page_size();
  info.kv_capacity_tokens = eng->stats().pages_total * eng->page_size();
  info.vocab_size = eng->vocab_size();
  info.dp_size = static_cast<int32_t>(cfg.parallel.dp_size);
  info.reasoning_parser = cfg.dyn_reasoning_parser;
  info.tool_call_parser = cfg.dyn_tool_call_parser;

  runtime::WorkerServiceOptions so;
  so.bind_endpoint = fmt::format("tcp://{}:{}", cfg.host, cfg.request_plane_port);
  so.advertise_host = cfg.advertise_host;
  so.discovery = cfg.discovery;
  so.heartbeat_interval_ms = cfg.heartbeat_interval_ms;
  so.watchdog_timeout_s = cfg.watchdog_timeout_s;
  runtime::WorkerService service(std::move(eng), std::move(info), so);
  return service.run();
}

WS_REGISTER_COMMAND("worker", "Serve a model to frontends (engine behind the request plane)",
                    [](CLI::App& app) {
                      auto cfg = std::make_shared<config::WorkerConfig>();
                      config::add_worker_flags(app, *cfg);
                      return [cfg] { return run_worker(*cfg); };
                    });

}  // namespace
}  // namespace wideserve::cli
