#include "runtime/request_client.h"

#include <algorithm>

#include "common/check.h"
#include "common/logging.h"
#include "runtime/codec.h"

namespace wideserve::runtime {

RequestClient::RequestClient(RequestClientOptions opts) : opts_(opts) {
  thread_ = std::thread([this] { loop(); });
}

RequestClient::~RequestClient() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.signal();
  if (thread_.joinable()) thread_.join();
}

void RequestClient::push(Command c) {
  // Called with mu_ held.
  commands_.push_back(std::move(c));
}

void RequestClient::generate(const std::string& endpoint, GenerateRequest req,
                             OutputHandler on_output) {
  auto r = std::make_shared<Request>();
  r->id = req.request_id;
  r->handler = std::move(on_output);
  int32_t n = std::max<int32_t>(1, req.params.n);
  r->open.assign(n, true);
  r->open_count = n;
  std::string payload = encode(req);
  {
    std::lock_guard<std::mutex> lock(mu_);
    WS_CHECK_CODE(kUnavailable, !stopping_, "request client stopped");
    Endpoint& ep = endpoints_[endpoint];
    WS_CHECK_ARG(ep.requests.find(r->id) == ep.requests.end(),
                 "request id {} is already in flight on {}", r->id, endpoint);
    ep.requests.emplace(r->id, r);
    push(SendCmd{endpoint, std::move(payload)});
  }
  wake_.signal();
}

void RequestClient::abort(const std::string& endpoint, uint64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto ep = endpoints_.find(endpoint);
    if (ep == endpoints_.end()) return;
    auto it = ep->second.requests.find(request_id);
    if (it == ep->second.requests.end() || it->second->aborted) return;
    it->second->aborted = true;
    aborts_.emplace(std::chrono::steady_clock::now() + opts_.abort_grace,
                    std::make_pair(endpoint, request_id));
    push(SendCmd{endpoint, encode(AbortRequest{request_id})});
  }
  wake_.signal();
}

void RequestClient::fail_endpoint(const std::string& endpoint, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    FailCmd cmd{endpoint, {}, reason, engine::FinishReason::kError};
    auto ep = endpoints_.find(endpoint);
    if (ep != endpoints_.end()) {
      for (auto& [id, r] : ep->second.requests) cmd.requests.push_back(r);
      endpoints_.erase(ep);
    }
    push(std::move(cmd));
  }
  wake_.signal();
}

size_t RequestClient::inflight(const std::string& endpoint) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto ep = endpoints_.find(endpoint);
  return ep == endpoints_.end() ? 0 : ep->second.requests.size();
}

uint64_t RequestClient::dropped_frames() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_frames_;
}

void RequestClient::loop() {
  std::vector<zmq::pollitem_t> items;
  std::vector<std::pair<std::string, zmq::socket_t*>> polled;
  std::vector<Command> cmds;
  while (true) {
    if (sockets_changed_) {
      items.assign(1, zmq::pollitem_t{nullptr, wake_.fd(), ZMQ_POLLIN, 0});
      polled.clear();
      for (auto& [name, s] : sockets_) {
        items.push_back(zmq::pollitem_t{s.handle(), 0, ZMQ_POLLIN, 0});
        polled.emplace_back(name, &s);
      }
      sockets_changed_ = false;
    }
    long timeout_ms = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!aborts_.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            aborts_.begin()->first - std::chrono::steady_clock::now());
        timeout_ms = std::max<long>(0, left.count() + 1);
      }
    }
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      WS_LOG_ERROR("request client: poll failed: {}", e.what());
      break;
    }
    // Sockets first: the poll results refer to the socket set before any command changes it.
    for (size_t i = 1; i < items.size(); ++i)
      if (items[i].revents & ZMQ_POLLIN) receive(polled[i - 1].first, *polled[i - 1].second);
    if (items[0].revents & ZMQ_POLLIN) {
      wake_.drain();
      bool stop;
      {
        std::lock_guard<std::mutex> lock(mu_);
        cmds.swap(commands_);
        stop = stopping_;
      }
      if (stop) break;
      run_commands(cmds);
      cmds.clear();
    }
    expire_aborts();
  }

  // Every caller hears an end: requests still open, including those of pending failures.
  std::vector<RequestPtr> left;
  std::vector<FailCmd> fails;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, ep] : endpoints_)
      for (auto& [id, r] : ep.requests) left.push_back(r);
    endpoints_.clear();
    aborts_.clear();
    for (auto& c : commands_)
      if (auto* f = std::get_if<FailCmd>(&c)) fails.push_back(std::move(*f));
    for (auto& c : cmds)
      if (auto* f = std::get_if<FailCmd>(&c)) fails.push_back(std::move(*f));
    commands_.clear();
  }
  sockets_.clear();
  for (auto& f : fails) end_open_samples(f.requests, f.finish, f.reason);
  end_open_samples(left, engine::FinishReason::kError, "request client stopped");
}

void RequestClient::run_commands(std::vector<Command>& cmds) {
  // Consecutive sends to one endpoint go out as one transport message.
  std::vector<std::pair<std::string, std::string>> pending;
  auto flush = [&] {
    for (auto& [endpoint, payload] : pending) {
      zmq::socket_t* s = socket_for(endpoint);
      if (s == nullptr) continue;
      try {
        s->send(zmq::buffer(payload), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        WS_LOG_WARN("request client: send to {} failed: {}", endpoint, e.what());
      }
    }
    pending.clear();
  };
  for (Command& c : cmds) {
    if (auto* s = std::get_if<SendCmd>(&c)) {
      auto it = std::find_if(pending.begin(), pending.end(),
                             [&](const auto& p) { return p.first == s->endpoint; });
      if (it == pending.end())
        pending.emplace_back(s->endpoint, std::move(s->payload));
      else
        it->second += s->payload;
    } else {
      auto& f = std::get<FailCmd>(c);
      flush();
      abort_on_close(f.endpoint, f.requests);
      close_socket(f.endpoint);
      end_open_samples(f.requests, f.finish, f.reason, /*worker_lost=*/true);
    }
  }
  flush();
}

zmq::socket_t* RequestClient::socket_for(const std::string& endpoint) {
  auto it = sockets_.find(endpoint);
  if (it != sockets_.end()) return &it->second;
  zmq::socket_t s(ctx_, zmq::socket_type::dealer);
  set_common_socket_options(s);
  try {
    s.connect(endpoint);
  } catch (const zmq::error_t& e) {
    // A bad address: nothing will ever answer, so end its requests now.
    std::string reason = fmt::format("cannot connect to worker {}: {}", endpoint, e.what());
    WS_LOG_ERROR("request client: {}", reason);
    std::vector<RequestPtr> reqs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto ep = endpoints_.find(endpoint);
      if (ep != endpoints_.end()) {
        for (auto& [id, r] : ep->second.requests) reqs.push_back(r);
        endpoints_.erase(ep);
      }
    }
    end_open_samples(reqs, engine::FinishReason::kError, reason, /*worker_lost=*/true);
    return nullptr;
  }
  sockets_changed_ = true;
  return &sockets_.emplace(endpoint, std::move(s)).first->second;
}

void RequestClient::abort_on_close(const std::string& endpoint,
                                   const std::vector<RequestPtr>& requests) {
  auto it = sockets_.find(endpoint);
  if (it == sockets_.end() || requests.empty()) return;
  // A worker declared lost may only be stalled (stopped, paused, cut off) and read its socket
  // later: these aborts, queued behind its requests, make it drop them then instead of holding
  // their KV until its own timeouts. Best effort: they get kAbortLinger to leave after the close.
  for (const auto& r : requests) {
    try {
      it->second.send(zmq::buffer(encode(AbortRequest{r->id})), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      return;
    }
  }
  it->second.set(zmq::sockopt::linger, static_cast<int>(kAbortLinger.count()));
}

void RequestClient::close_socket(const std::string& endpoint) {
  auto it = sockets_.find(endpoint);
  if (it == sockets_.end()) return;
  it->second.close();  // linger 0 (unless abort_on_close): queued requests are discarded
  sockets_.erase(it);
  sockets_changed_ = true;
}

void RequestClient::receive(const std::string& endpoint, zmq::socket_t& s) {
  for (int i = 0; i < 1024; ++i) {
    zmq::message_t msg;
    try {
      if (!s.recv(msg, zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t& e) {
      WS_LOG_ERROR("request client: recv from {} failed: {}", endpoint, e.what());
      return;
    }
    std::vector<Message> msgs;
    try {
      msgs = decode_all(std::string_view(static_cast<const char*>(msg.data()), msg.size()));
    } catch (const std::exception& e) {
      log_dropped(endpoint, e.what());
      continue;
    }
    for (const Message& m : msgs) {
      if (const auto* o = std::get_if<GenerateOutput>(&m))
        deliver(endpoint, o->output);
      else
        log_dropped(endpoint, fmt::format("unexpected {} on the request plane",
                                          message_type_name(message_type(m))));
    }
  }
}

void RequestClient::deliver(const std::string& endpoint, const engine::RequestOutput& out) {
  RequestPtr r;
  std::vector<RequestPtr> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto ep = endpoints_.find(endpoint);
    if (ep == endpoints_.end()) {
      ++dropped_frames_;
      return;
    }
    auto it = ep->second.requests.find(out.id);
    if (it == ep->second.requests.end()) {
      ++dropped_frames_;  // finished, failed or never sent: normal after abort or fail
      return;
    }
    r = it->second;
    if (out.index < 0 || out.index >= static_cast<int32_t>(r->open.size()) || !r->open[out.index]) {
      ++dropped_frames_;
      return;
    }
    if (out.finish == engine::FinishReason::kError) {
      // An error ends the whole request (the engine rejects a bad request with one output for
      // all its samples): the other open samples get the same error, and the worker is told to
      // stop computing them.
      r->open[out.index] = false;
      --r->open_count;
      if (r->open_count > 0) {
        rest.push_back(r);
        push(SendCmd{endpoint, encode(AbortRequest{out.id})});
      }
      ep->second.requests.erase(it);
    } else if (out.finish != engine::FinishReason::kNone) {
      r->open[out.index] = false;
      if (--r->open_count == 0) ep->second.requests.erase(it);
    }
  }
  if (!rest.empty()) wake_.signal();
  try {
    if (r->handler) r->handler(out);
  } catch (const std::exception& e) {
    WS_LOG_ERROR("request client: output handler of request {} threw: {}", out.id, e.what());
  }
  end_open_samples(rest, engine::FinishReason::kError, out.error);
}

void RequestClient::end_open_samples(const std::vector<RequestPtr>& reqs,
                                     engine::FinishReason finish, const std::string& error,
                                     bool worker_lost) {
  for (const RequestPtr& r : reqs) {
    std::vector<int32_t> indices;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < r->open.size(); ++i)
        if (r->open[i]) {
          r->open[i] = false;
          indices.push_back(static_cast<int32_t>(i));
        }
      r->open_count = 0;
    }
    for (int32_t i : indices) {
      engine::RequestOutput o;
      o.id = r->id;
      o.index = i;
      o.finish = finish;
      o.error = error;
      o.worker_lost = worker_lost;
      try {
        if (r->handler) r->handler(o);
      } catch (const std::exception& e) {
        WS_LOG_ERROR("request client: output handler of request {} threw: {}", r->id, e.what());
      }
    }
  }
}

void RequestClient::expire_aborts() {
  std::vector<RequestPtr> expired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    while (!aborts_.empty() && aborts_.begin()->first <= now) {
      const auto& [endpoint, id] = aborts_.begin()->second;
      auto ep = endpoints_.find(endpoint);
      if (ep != endpoints_.end()) {
        auto it = ep->second.requests.find(id);
        if (it != ep->second.requests.end() && it->second->aborted) {
          expired.push_back(it->second);
          ep->second.requests.erase(it);
        }
      }
      aborts_.erase(aborts_.begin());
    }
  }
  end_open_samples(expired, engine::FinishReason::kAbort, "");
}

void RequestClient::log_dropped(const std::string& endpoint, const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++dropped_frames_;
  }
  uint64_t suppressed = 0;
  if (drop_log_.allow(suppressed))
    WS_LOG_WARN("request client: dropped a frame from {}: {} ({} similar suppressed)", endpoint,
                why, suppressed);
}

}  // namespace wideserve::runtime
