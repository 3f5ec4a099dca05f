#include "disagg/prefill_coordinator.h"

#include "common/check.h"
#include "common/logging.h"
#include "disagg/control.h"
#include "disagg/kv_agent.h"

namespace wideserve::disagg {

PrefillCoordinator::PrefillCoordinator(const DisaggOptions& opts, const engine::KvBufferInfo& kv)
    : opts_(opts), local_(layout_of(kv)), control_(ctx_, zmq::socket_type::router) {
  agent_ = make_kv_agent(opts_, kv);
  control_.set(zmq::sockopt::linger, 0);
  control_.set(zmq::sockopt::router_mandatory, 0);
  try {
    control_.bind(fmt::format("tcp://{}:0", opts_.bind_host));
  } catch (const zmq::error_t& e) {
    WS_THROW(kUnavailable, "cannot bind the disaggregation control socket on {}: {}",
             opts_.bind_host, e.what());
  }
  const std::string last = control_.get(zmq::sockopt::last_endpoint);
  control_endpoint_ =
      fmt::format("tcp://{}:{}", opts_.advertise_host, last.substr(last.rfind(':') + 1));

  // Bootstrap server: decode engines ask it where this engine's rank listens, and probe /health.
  runtime::HttpServerOptions so;
  so.host = opts_.bind_host;
  so.port = static_cast<uint16_t>(opts_.bootstrap_port);
  so.max_body_bytes = 1 << 20;
  const nlohmann::json route = {{"dp_rank", 0},
                                {"tp_rank", 0},
                                {"rank_ip", opts_.advertise_host},
                                {"control_endpoint", control_endpoint_},
                                {"agent_name", opts_.agent_name},
                                {"transfer_backend", agent_->backend()},
                                {"page_size", local_.page_size},
                                {"kv_dtype", local_.dtype}};
  http_ = std::make_unique<runtime::HttpServer>(
      http_ioc_, so, [route](runtime::HttpExchange& ex) -> boost::asio::awaitable<void> {
        std::string target(ex.request().target());
        if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
        std::string body;
        auto status = boost::beast::http::status::ok;
        if (target == "/health") {
          body = R"({"status":"ok"})";
        } else if (target == "/route") {
          // One rank per engine today; PUT (a rank registering) is accepted as a no-op.
          body = route.dump();
        } else {
          status = boost::beast::http::status::not_found;
          body = R"({"error":"no such route"})";
        }
        co_await ex.respond(status, "application/json", std::move(body));
      });
  http_->start();
  bootstrap_port_ = http_->port();
  http_thread_ = std::thread([this] { http_ioc_.run(); });
  WS_LOG_INFO("prefill disaggregation: bootstrap server on {}:{}, control {}, transfer {} ({})",
              opts_.bind_host, bootstrap_port_, control_endpoint_, opts_.transfer_backend,
              agent_->backend());
}

PrefillCoordinator::~PrefillCoordinator() {
  http_ioc_.stop();
  if (http_thread_.joinable()) http_thread_.join();
}

engine::RequestOutput PrefillCoordinator::ended(uint64_t id, engine::FinishReason f,
                                                const std::string& error) {
  engine::RequestOutput o;
  o.id = id;
  o.finish = f;
  o.error = error;
  return o;
}

void PrefillCoordinator::tell(const std::string& identity, const nlohmann::json& msg) {
  try {
    send_json(control_, msg, &identity);
  } catch (const zmq::error_t& e) {
    WS_LOG_WARN("disaggregation control: cannot answer a decode engine: {}", e.what());
  }
}

bool PrefillCoordinator::intercept(engine::NewRequest& r, engine::EngineCore& core,
                                   std::vector<engine::RequestOutput>& out) {
  if (!r.disagg.present()) return false;  // a plain request served aggregated
  // Prefill computes the prompt and samples the first token only; decode does the rest.
  r.params.max_new_tokens = 1;
  r.params.min_new_tokens = std::min(r.params.min_new_tokens, 1);
  r.hold_kv = true;
  core.validate_request(r);
  const uint64_t room = r.disagg.bootstrap_room;
  WS_CHECK_ARG(!waiting_.count(room), "bootstrap room {} is already in use", room);
  waiting_[room] = Waiting{
      std::move(r), Clock::now() + std::chrono::milliseconds(
                                       static_cast<int64_t>(opts_.bootstrap_timeout_s * 1e3))};
  poll(core, out);
  return true;
}

bool PrefillCoordinator::abort(uint64_t id, engine::EngineCore& core,
                               std::vector<engine::RequestOutput>& out) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->second.r.id != id) continue;
    if (auto d = destinations_.find(it->first); d != destinations_.end()) {
      tell(d->second.identity,
           {{"type", "failed"}, {"room", it->first}, {"error", "prefill aborted"}});
      destinations_.erase(d);
    }
    waiting_.erase(it);
    out.push_back(ended(id, engine::FinishReason::kAbort));
    return true;
  }
  for (auto& f : inflight_)
    if (f.id == id) {
      f.aborted = true;  // the write finishes (pages must not be reused under it), then kAbort
      return true;
    }
  return false;  // in the core: it aborts, and on_outputs tells the decode side
}

void PrefillCoordinator::handle_control(const std::string& identity, const nlohmann::json& msg) {
  try {
    const std::string type = msg.at("type").get<std::string>();
    if (type == "hello") {
      const std::string agent = msg.at("agent").get<std::string>();
      const KvLayout layout = kv_layout_from_json(msg.at("layout"));
      std::string error;
      try {
        check_compatible(local_, layout);
        agent_->add_remote(agent, msg.at("metadata").get<std::string>());
        decode_layouts_[agent] = layout;
        WS_LOG_INFO("decode engine {} connected (page size {})", agent, layout.page_size);
      } catch (const Error& e) {
        error = user_message(e);
        WS_LOG_ERROR("refusing decode engine {}: {}", agent, error);
      }
      tell(identity, {{"type", "hello_ack"}, {"error", error}});
    } else if (type == "pages") {
      const uint64_t room = msg.at("room").get<uint64_t>();
      Destination d;
      d.identity = identity;
      d.agent = msg.at("agent").get<std::string>();
      d.pages = msg.at("pages").get<std::vector<int32_t>>();
      d.expires = Clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(opts_.bootstrap_timeout_s * 1e3));
      destinations_[room] = std::move(d);
    } else if (type == "abort") {
      const uint64_t room = msg.at("room").get<uint64_t>();
      destinations_.erase(room);
      bool writing = false;
      for (auto& f : inflight_)
        if (f.room == room) writing = f.aborted = true;
      bool computing = false;
      for (const auto& [id, r] : forwarding_)
        if (r == room) computing = true;
      if (writing || computing)
        aborted_rooms_.insert(room);  // answered when the forward or write is over
      else
        tell(identity, {{"type", "aborted"}, {"room", room}});
    }
  } catch (const std::exception& e) {
    WS_LOG_WARN("dropping malformed disaggregation control message: {}", e.what());
  }
}

void PrefillCoordinator::poll(engine::EngineCore& core, std::vector<engine::RequestOutput>& out) {
  while (auto m = recv_json(control_, true)) handle_control(m->first, m->second);
  const auto now = Clock::now();
  // Bootstrap queue: a request starts once its room's pages are known.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    const uint64_t room = it->first;
    if (destinations_.count(room)) {
      const uint64_t id = it->second.r.id;
      try {
        core.add_request(std::move(it->second.r));
        forwarding_[id] = room;
      } catch (const Error& e) {
        out.push_back(ended(id, engine::FinishReason::kError, user_message(e)));
      }
      it = waiting_.erase(it);
    } else if (now >= it->second.deadline) {
      out.push_back(ended(
          it->second.r.id, engine::FinishReason::kError,
          fmt::format("disaggregation bootstrap timeout: the decode engine did not send pages for "
                      "room {} within {:.0f} s (SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT)",
                      room, opts_.bootstrap_timeout_s)));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  // Pages for a room whose prefill request never came.
  for (auto it = destinations_.begin(); it != destinations_.end();) {
    bool claimed = false;
    for (const auto& [id, r] : forwarding_) claimed |= r == it->first;
    if (!claimed && !waiting_.count(it->first) && now >= it->second.expires) {
      tell(it->second.identity, {{"type", "failed"},
                                 {"room", it->first},
                                 {"error", "no prefill request arrived for this room"}});
      it = destinations_.erase(it);
    } else {
      ++it;
    }
  }
  // Writes in flight.
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    auto st = agent_->poll(it->handle);
    if (st.state == transfer::TransferState::kPending) {
      ++it;
      continue;
    }
    agent_->release(it->handle);
    core.release_held_kv(it->id);
    if (aborted_rooms_.erase(it->room))
      tell(it->identity, {{"type", "aborted"}, {"room", it->room}});
    if (it->aborted) {
      out.push_back(ended(it->id, engine::FinishReason::kAbort));
    } else if (st.state == transfer::TransferState::kDone) {
      out.push_back(std::move(it->final_output));
    } else {
      const std::string err = "KV transfer to the decode engine failed: " + st.error;
      tell(it->identity, {{"type", "failed"}, {"room", it->room}, {"error", err}});
      out.push_back(ended(it->id, engine::FinishReason::kError, err));
    }
    it = inflight_.erase(it);
  }
}

void PrefillCoordinator::start_transfer(engine::EngineCore& core, engine::RequestOutput& o,
                                        uint64_t room, std::vector<engine::RequestOutput>& out) {
  auto d = destinations_.find(room);
  const engine::HeldKv* held = core.held_kv(o.id);
  std::string error;
  if (d == destinations_.end() || aborted_rooms_.count(room)) {
    error = "the decode engine gave up on this room";
  } else if (!held) {
    error = "internal: no KV held for the request";
  } else {
    try {
      auto layout = decode_layouts_.find(d->second.agent);
      WS_CHECK_CODE(kUnavailable, layout != decode_layouts_.end(),
                    "decode engine {} never said hello", d->second.agent);
      auto ops =
          plan_kv_writes(local_, held->pages, layout->second, d->second.pages, held->num_tokens);
      RoomDone done{room, o.logprobs.empty() ? engine::SampleResult{o.new_tokens.at(0), 0.0f, {}}
                                             : o.logprobs.at(0)};
      Inflight f;
      f.id = o.id;
      f.room = room;
      f.identity = d->second.identity;
      f.final_output = o;
      f.handle = agent_->write(d->second.agent, ops, encode_room_done(done));
      inflight_.push_back(std::move(f));
      destinations_.erase(d);
      return;
    } catch (const Error& e) {
      error = user_message(e);
    }
  }
  core.release_held_kv(o.id);
  if (d != destinations_.end()) {
    tell(d->second.identity, {{"type", aborted_rooms_.count(room) ? "aborted" : "failed"},
                              {"room", room},
                              {"error", error}});
    destinations_.erase(d);
  }
  const bool was_aborted = aborted_rooms_.erase(room) > 0;
  out.push_back(ended(o.id,
                      was_aborted ? engine::FinishReason::kAbort : engine::FinishReason::kError,
                      was_aborted ? "" : error));
}

void PrefillCoordinator::on_outputs(engine::EngineCore& core,
                                    std::vector<engine::RequestOutput>& outs) {
  std::vector<engine::RequestOutput> keep, extra;
  for (auto& o : outs) {
    auto f = forwarding_.find(o.id);
    if (f == forwarding_.end() || o.finish == engine::FinishReason::kNone) {
      keep.push_back(std::move(o));
      continue;
    }
    const uint64_t room = f->second;
    forwarding_.erase(f);
    if (o.finish == engine::FinishReason::kStop || o.finish == engine::FinishReason::kLength) {
      start_transfer(core, o, room, extra);  // the output goes out once the KV has landed
      continue;
    }
    // Aborted or failed in the forward: the decode side must not wait for this room.
    if (auto d = destinations_.find(room); d != destinations_.end()) {
      tell(d->second.identity, {{"type", aborted_rooms_.erase(room) ? "aborted" : "failed"},
                                {"room", room},
                                {"error", o.error.empty() ? "prefill aborted" : o.error}});
      destinations_.erase(d);
    }
    keep.push_back(std::move(o));
  }
  for (auto& e : extra) keep.push_back(std::move(e));
  outs.swap(keep);
}

bool PrefillCoordinator::owns(uint64_t id) const {
  if (forwarding_.count(id)) return true;
  for (const auto& [room, w] : waiting_)
    if (w.r.id == id) return true;
  for (const auto& f : inflight_)
    if (f.id == id) return true;
  return false;
}

bool PrefillCoordinator::busy() const {
  return !waiting_.empty() || !inflight_.empty() || !destinations_.empty() || !forwarding_.empty();
}

int64_t PrefillCoordinator::queued() const {
  return static_cast<int64_t>(waiting_.size());
}

}  // namespace wideserve::disagg
