// Prefill side of PD disaggregation (SGLang's prefill bootstrap queue + inflight queue): a
// request with a bootstrap room waits until the decode engine has sent that room's destination
// pages, is prefilled (one token, KV kept), then its KV pages and first token are written into
// the decode engine's pool; its own pages are freed when the write is done. Also runs the
// bootstrap HTTP server (/route, /health) on --disaggregation-bootstrap-port.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "disagg/disagg_options.h"
#include "disagg/kv_transfer_plan.h"
#include "engine/loop_hook.h"
#include "runtime/http_server.h"
#include "transfer/transfer_agent.h"

namespace wideserve::disagg {

class PrefillCoordinator : public engine::LoopHook {
 public:
  PrefillCoordinator(const DisaggOptions& opts, const engine::KvBufferInfo& kv);
  ~PrefillCoordinator() override;

  bool intercept(engine::NewRequest& r, engine::EngineCore& core,
                 std::vector<engine::RequestOutput>& out) override;
  bool abort(uint64_t id, engine::EngineCore& core,
             std::vector<engine::RequestOutput>& out) override;
  void poll(engine::EngineCore& core, std::vector<engine::RequestOutput>& out) override;
  void on_outputs(engine::EngineCore& core, std::vector<engine::RequestOutput>& outs) override;
  bool owns(uint64_t id) const override;
  bool busy() const override;
  int64_t queued() const override;

  // Where decode engines reach this one.
  int32_t bootstrap_port() const { return bootstrap_port_; }
  const std::string& control_endpoint() const { return control_endpoint_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Destination {     // a room's pages on a decode engine
    std::string identity;  // control connection of that decode engine
    std::string agent;
    std::vector<int32_t> pages;
    Clock::time_point expires;
  };
  struct Waiting {  // bootstrap queue
    engine::NewRequest r;
    Clock::time_point deadline;
  };
  struct Inflight {
    uint64_t id = 0;
    uint64_t room = 0;
    transfer::TransferHandle handle;
    engine::RequestOutput final_output;
    std::string identity;
    bool aborted = false;
  };
  void handle_control(const std::string& identity, const nlohmann::json& msg);
  void start_transfer(engine::EngineCore& core, engine::RequestOutput& o, uint64_t room,
                      std::vector<engine::RequestOutput>& out);
  void tell(const std::string& identity, const nlohmann::json& msg);
  engine::RequestOutput ended(uint64_t id, engine::FinishReason f, const std::string& error = {});

  DisaggOptions opts_;
  KvLayout local_;
  std::unique_ptr<transfer::TransferAgent> agent_;
  zmq::context_t ctx_{1};
  zmq::socket_t control_;
  std::string control_endpoint_;
  // Bootstrap HTTP server on its own thread.
  boost::asio::io_context http_ioc_;
  std::unique_ptr<runtime::HttpServer> http_;
  std::thread http_thread_;
  int32_t bootstrap_port_ = 0;

  std::unordered_map<std::string, KvLayout> decode_layouts_;  // by decode agent name
  std::unordered_map<uint64_t, Waiting> waiting_;             // by room
  std::unordered_map<uint64_t, Destination> destinations_;    // by room
  std::unordered_map<uint64_t, uint64_t> forwarding_;         // request id -> room (in the core)
  std::unordered_set<uint64_t> aborted_rooms_;                // decode gave up on these
  std::vector<Inflight> inflight_;
};

}  // namespace wideserve::disagg
