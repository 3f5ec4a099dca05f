// `wideserve transfer-test` (hidden): two processes exercising the KV transfer agent, for the e2e
// tests and bench/transfer_bench.sh. The target registers a KV-pool-like buffer and writes its
// metadata to a file; the initiator reads it and writes page-sized ops (every other destination
// page, so nothing merges), one notification per transfer carrying a checksum that the target
// verifies on arrival. Both print one JSON line per event on stdout.
#include "cli/command.h"
#include "common/check.h"
#include "common/logging.h"
#include "transfer/transfer_agent.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace wideserve::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string role, backend = "ucx", name, listen_host = "127.0.0.1", advertise_host, ucx_tls,
                    ucx_devices, metadata_file;
  uint64_t bytes = 64 << 20, op_bytes = 4096, transfers = 16, iters = 1;
  int64_t timeout_ms = 10000, serve_seconds = 120;
  bool verify = true;
};

uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Bytes of transfer k: ops [k * ops_per, (k + 1) * ops_per); op i reads source page i and writes
// destination page 2 * i.
struct Layout {
  uint64_t op_bytes, ops, ops_per;
  explicit Layout(const Args& a) : op_bytes(a.op_bytes), ops(a.bytes / a.op_bytes) {
    WS_CHECK_ARG(a.bytes % a.op_bytes == 0 && ops % a.transfers == 0,
                 "--bytes must be a multiple of --op-bytes x --transfers");
    ops_per = ops / a.transfers;
  }
  uint64_t checksum(const uint8_t* base, uint64_t k, uint64_t stride) const {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = k * ops_per; i < (k + 1) * ops_per; ++i) {
      h = fnv1a(h, base + i * stride, op_bytes);
    }
    return h;
  }
};

transfer::AgentOptions agent_options(const Args& a) {
  transfer::AgentOptions o;
  o.name = a.name.empty() ? a.role : a.name;
  o.listen_host = a.listen_host;
  o.advertise_host = a.advertise_host;
  o.ucx_transports = a.ucx_tls;
  o.ucx_net_devices = a.ucx_devices;
  o.timeout = std::chrono::milliseconds(a.timeout_ms);
  return o;
}

void emit(const nlohmann::json& j) {
  std::cout << j.dump() << std::endl;
}

int run_target(const Args& a) {
  Layout lay(a);
  auto agent = transfer::make_transfer_agent(a.backend, agent_options(a));
  std::vector<uint8_t> pool(lay.ops * lay.op_bytes * 2, 0);
  agent->register_memory(pool.data(), pool.size());
  std::string tmp = a.metadata_file + ".tmp";
  std::ofstream(tmp) << agent->metadata();
  std::filesystem::rename(tmp, a.metadata_file);
  emit({{"event", "ready"}, {"backend", agent->backend()}});
  uint64_t expected = a.transfers * a.iters, got = 0, bad = 0;
  auto deadline = Clock::now() + std::chrono::seconds(a.serve_seconds);
  while (got < expected && Clock::now() < deadline) {
    for (auto& n : agent->wait_notifications(200ms)) {
      ++got;
      uint64_t k = 0, crc = 0;
      WS_CHECK(std::sscanf(n.message.c_str(), "xfer=%lu crc=%lx", &k, &crc) == 2,
               "bad notification '{}'", n.message);
      bool ok = true;
      if (a.verify) ok = lay.checksum(pool.data(), k, 2 * lay.op_bytes) == crc;
      bad += !ok;
      emit({{"event", "notification"}, {"peer", n.peer}, {"xfer", k}, {"ok", ok}});
    }
  }
  emit({{"event", "done"}, {"received", got}, {"bad", bad}});
  return got == expected && bad == 0 ? 0 : 1;
}

int run_initiator(const Args& a) {
  Layout lay(a);
  auto agent = transfer::make_transfer_agent(a.backend, agent_options(a));
  std::vector<uint8_t> src(lay.ops * lay.op_bytes);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i + 8 <= src.size(); i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&src[i], &x, 8);
  }
  agent->register_memory(src.data(), src.size());
  auto wait_until = Clock::now() + 60s;
  while (!std::filesystem::exists(a.metadata_file)) {
    WS_CHECK_CODE(kUnavailable, Clock::now() < wait_until, "no metadata file {}", a.metadata_file);
    std::this_thread::sleep_for(20ms);
  }
  std::stringstream meta;
  meta << std::ifstream(a.metadata_file).rdbuf();
  auto regions = nlohmann::json::parse(meta.str()).at("regions");
  uint64_t dst = regions.at(0).at("base").get<uint64_t>();
  agent->add_remote("target", meta.str());

  std::vector<std::vector<transfer::WriteOp>> ops(a.transfers);
  std::vector<std::string> notes(a.transfers);
  for (uint64_t k = 0; k < a.transfers; ++k) {
    for (uint64_t i = k * lay.ops_per; i < (k + 1) * lay.ops_per; ++i) {
      ops[k].push_back({src.data() + i * lay.op_bytes, dst + 2 * i * lay.op_bytes, lay.op_bytes});
    }
    notes[k] = fmt::format("xfer={} crc={:x}", k, lay.checksum(src.data(), k, lay.op_bytes));
  }
  double best = 0;
  for (uint64_t it = 0; it < a.iters; ++it) {
    auto t0 = Clock::now();
    std::vector<transfer::TransferHandle> hs;
    for (uint64_t k = 0; k < a.transfers; ++k)
      hs.push_back(agent->write("target", ops[k], notes[k]));
    for (auto h : hs) {
      auto s = agent->wait(h, std::chrono::milliseconds(a.timeout_ms) * 4 + 60s);
      if (s.state != transfer::TransferState::kDone) {
        double took = std::chrono::duration<double>(Clock::now() - t0).count();
        emit({{"event", "failed"},
              {"error", s.error},
              {"state", transfer_state_name(s.state)},
              {"seconds", took}});
        return 3;
      }
      agent->release(h);
    }
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    double gbps = double(src.size()) / secs / 1e9;
    best = std::max(best, gbps);
    emit({{"event", "iteration"},
          {"iter", it},
          {"bytes", src.size()},
          {"seconds", secs},
          {"gbps", gbps}});
  }
  emit({{"event", "done"}, {"best_gbps", best}, {"backend", agent->backend()}});
  return 0;
}

WS_REGISTER_COMMAND("transfer-test", "KV transfer agent test/benchmark (two processes)",
                    [](CLI::App& app) {
                      app.group("");  // hidden: a tool for tests and bench/transfer_bench.sh
                      auto a = std::make_shared<Args>();
                      app.add_option("--role", a->role, "target | initiator")
                          ->required()
                          ->check(CLI::IsMember({"target", "initiator"}));
                      app.add_option("--backend", a->backend, "ucx | nixl | tcp");
                      app.add_option("--name", a->name, "agent name (default: the role)");
                      app.add_option("--listen-host", a->listen_host, "tcp: listen address");
                      app.add_option("--advertise-host", a->advertise_host,
                                     "tcp: address in metadata");
                      app.add_option("--ucx-tls", a->ucx_tls, "UCX_TLS for the agent");
                      app.add_option("--ucx-net-devices", a->ucx_devices, "UCX_NET_DEVICES");
                      app.add_option("--metadata-file", a->metadata_file,
                                     "target writes / initiator reads its metadata here")
                          ->required();
                      app.add_option("--bytes", a->bytes, "bytes per iteration");
                      app.add_option("--op-bytes", a->op_bytes, "bytes per op (a KV page)");
                      app.add_option("--transfers", a->transfers, "transfers per iteration");
                      app.add_option("--iters", a->iters, "iterations");
                      app.add_option("--timeout-ms", a->timeout_ms, "agent no-progress timeout");
                      app.add_option("--serve-seconds", a->serve_seconds, "target: give up after");
                      app.add_flag("!--no-verify", a->verify, "target: skip checksum checks");
                      return [a] {
                        set_log_process_name("transfer-" + a->role);
                        return a->role == "target" ? run_target(*a) : run_initiator(*a);
                      };
                    });

}  // namespace
}  // namespace wideserve::cli
