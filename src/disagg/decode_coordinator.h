// Decode side of PD disaggregation (SGLang's prealloc queue + transfer queue): a request with
// bootstrap info connects to its prefill engine (bootstrap server -> control socket, transfer
// agent handshake), reserves KV pages for its prompt when memory allows, sends their indices,
// waits for the KV and the first token to land, then joins the running batch. Heartbeats to the
// prefill's bootstrap server, waiting timeouts and aborts fail requests cleanly; pages a prefill
// may still be writing are quarantined until it confirms.
#pragma once

#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "disagg/disagg_options.h"
#include "disagg/kv_transfer_plan.h"
#include "engine/loop_hook.h"
#include "transfer/transfer_agent.h"

namespace wideserve::disagg {

class DecodeCoordinator : public engine::LoopHook {
 public:
  DecodeCoordinator(const DisaggOptions& opts, const engine::KvBufferInfo& kv);
  ~DecodeCoordinator() override;

  bool intercept(engine::NewRequest& r, engine::EngineCore& core,
                 std::vector<engine::RequestOutput>& out) override;
  bool abort(uint64_t id, engine::EngineCore& core,
             std::vector<engine::RequestOutput>& out) override;
  void poll(engine::EngineCore& core, std::vector<engine::RequestOutput>& out) override;
  void on_outputs(engine::EngineCore& core, std::vector<engine::RequestOutput>& outs) override {}
  bool owns(uint64_t id) const override { return entries_.count(id) > 0; }
  bool busy() const override;
  int64_t queued() const override { return static_cast<int64_t>(entries_.size()); }

 private:
  using Clock = std::chrono::steady_clock;
  enum class PeerState { kResolving, kHandshaking, kReady, kFailed };
  struct Peer {
    std::string key;  // bootstrap host:port
    std::string host;
    int32_t port = 0;
    PeerState state = PeerState::kResolving;
    std::future<nlohmann::json> route;  // GET /route in the background
    std::unique_ptr<zmq::socket_t> control;
    std::string error;
    int64_t heartbeat_failures = 0;
    Clock::time_point next_heartbeat;
    std::future<bool> heartbeat;
    Clock::time_point handshake_deadline;
  };
  // Request states, in order: prealloc (no pages yet) -> transferring (pages sent) -> joined.
  struct Entry {
    engine::NewRequest r;
    std::string peer;
    std::vector<int32_t> pages;
    bool transferring = false;
    Clock::time_point deadline;
  };
  struct Quarantine {  // pages a prefill might still write into
    uint64_t room = 0;
    std::vector<int32_t> pages;
    Clock::time_point release_at;  // max(): held until the suspect peer is resolved
    std::string suspect;           // failed peer (host:port) that may still write, or ""
  };
  // What probing a failed peer's bootstrap port says about it.
  enum class Probe { kAlive, kGone, kSilent };
  struct Suspect {  // a failed peer that may only be stalled
    std::string host;
    int32_t port = 0;
    Clock::time_point next_probe;
    std::future<Probe> probe;
  };
  void probe_suspects(engine::EngineCore& core);
  Peer& peer_for(const engine::DisaggInfo& d);
  void advance_peer(Peer& p, engine::EngineCore& core, std::vector<engine::RequestOutput>& out);
  void fail_peer(Peer& p, const std::string& error, engine::EngineCore& core,
                 std::vector<engine::RequestOutput>& out);
  void fail_entry(uint64_t id, const std::string& error, engine::FinishReason f,
                  engine::EngineCore& core, std::vector<engine::RequestOutput>& out);
  void handle_control(Peer& p, const nlohmann::json& msg, engine::EngineCore& core,
                      std::vector<engine::RequestOutput>& out);
  uint64_t id_of_room(uint64_t room) const;

  DisaggOptions opts_;
  KvLayout local_;
  std::unique_ptr<transfer::TransferAgent> agent_;
  zmq::context_t ctx_{1};
  std::unordered_map<std::string, std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<Peer>> graveyard_;  // failed peers whose background calls still run
  std::unordered_map<uint64_t, Entry> entries_;   // by request id
  std::deque<uint64_t> prealloc_order_;           // FCFS among requests without pages
  std::vector<Quarantine> quarantine_;
  std::unordered_map<std::string, Suspect> suspects_;  // by host:port
};

}  // namespace wideserve::disagg
