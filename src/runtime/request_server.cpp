#include "runtime/request_server.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"
#include "common/logging.h"
#include "runtime/codec.h"

namespace wideserve::runtime {
namespace {

std::string hex_id(const std::string& peer) {
  std::string s;
  for (unsigned char c : peer) s += fmt::format("{:02x}", c);
  return s;
}

}  // namespace

size_t PeerRequestHash::operator()(const PeerRequest& k) const noexcept {
  size_t h = std::hash<std::string>{}(k.peer);
  return h ^ (std::hash<uint64_t>{}(k.request_id) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

RequestServer::RequestServer(std::string bind_endpoint, Handlers h, RequestServerOptions opts)
    : handlers_(std::move(h)), opts_(std::move(opts)), sock_(ctx_, zmq::socket_type::router) {
  set_common_socket_options(sock_);
  try {
    sock_.bind(bind_endpoint);
  } catch (const zmq::error_t& e) {
    WS_THROW(kUnavailable, "request plane: cannot bind {}: {}", bind_endpoint, e.what());
  }
  endpoint_ = connectable_endpoint(sock_, opts_.advertise_host);
  // The socket moves to the server thread here; thread start is the required memory barrier.
  thread_ = std::thread([this] { loop(); });
}

RequestServer::~RequestServer() {
  stop();
}

void RequestServer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.signal();
  if (thread_.joinable()) thread_.join();
  if (sock_.handle() != nullptr) sock_.close();
}

void RequestServer::send(const PeerRequest& key, GenerateOutput out) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    first = queue_.empty();
    queue_.emplace_back(key, std::move(out));
  }
  // The queue was non-empty: the thread is already signalled and will take this one too.
  if (first) wake_.signal();
}

void RequestServer::loop() {
  std::vector<std::pair<PeerRequest, GenerateOutput>> batch;
  zmq::pollitem_t items[2] = {{sock_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_.fd(), ZMQ_POLLIN, 0}};
  while (true) {
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      WS_LOG_ERROR("request server {}: poll failed: {}", endpoint_, e.what());
      return;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      wake_.drain();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        batch.swap(queue_);
      }
      flush(batch);
      batch.clear();
    }
    if (items[0].revents & ZMQ_POLLIN) receive_ready();
  }
}

void RequestServer::receive_ready() {
  // Bounded so that queued outputs keep flowing under a flood of requests.
  for (int i = 0; i < 1024; ++i) {
    zmq::message_t id;
    try {
      if (!sock_.recv(id, zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t& e) {
      WS_LOG_ERROR("request server {}: recv failed: {}", endpoint_, e.what());
      return;
    }
    std::string peer = id.to_string();
    bool more = id.more();
    bool any = false;
    while (more) {
      zmq::message_t part;
      if (!sock_.recv(part, zmq::recv_flags::dontwait)) break;  // parts arrive atomically
      more = part.more();
      any = true;
      handle_payload(peer, std::string_view(static_cast<const char*>(part.data()), part.size()));
    }
    if (!any) log_dropped(peer, "empty message");
  }
}

void RequestServer::handle_payload(const std::string& peer, std::string_view payload) {
  std::vector<Message> msgs;
  try {
    msgs = decode_all(payload);
  } catch (const std::exception& e) {
    log_dropped(peer, e.what());
    return;
  }
  for (Message& m : msgs) {
    if (auto* g = std::get_if<GenerateRequest>(&m)) {
      PeerRequest key{peer, g->request_id};
      int32_t n = std::max<int32_t>(1, g->params.n);
      try {
        if (!handlers_.on_generate) WS_THROW(kInternal, "worker has no generate handler");
        handlers_.on_generate(key, std::move(*g));
      } catch (const std::exception& e) {
        // Answer every sample so that the frontend's request ends instead of hanging.
        WS_LOG_WARN("request {} from {} failed: {}", key.request_id, hex_id(peer), e.what());
        for (int32_t i = 0; i < n; ++i) {
          GenerateOutput o;
          o.output.id = key.request_id;
          o.output.index = i;
          o.output.finish = engine::FinishReason::kError;
          o.output.error = e.what();
          send(key, std::move(o));
        }
      }
    } else if (auto* a = std::get_if<AbortRequest>(&m)) {
      try {
        if (handlers_.on_abort) handlers_.on_abort(PeerRequest{peer, a->request_id});
      } catch (const std::exception& e) {
        WS_LOG_WARN("abort of request {} from {} failed: {}", a->request_id, hex_id(peer),
                    e.what());
      }
    } else {
      log_dropped(peer, fmt::format("unexpected {} on the request plane",
                                    message_type_name(message_type(m))));
    }
  }
}

void RequestServer::flush(std::vector<std::pair<PeerRequest, GenerateOutput>>& batch) {
  // One transport message per peer (up to max_batch_bytes), frames in queue order.
  std::vector<std::pair<std::string, std::string>> per_peer;
  auto send_payload = [&](const std::string& peer, std::string& payload) {
    try {
      sock_.send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      sock_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      WS_LOG_WARN("request server {}: send to {} failed: {}", endpoint_, hex_id(peer), e.what());
    }
    payload.clear();
  };
  for (auto& [key, out] : batch) {
    auto it = std::find_if(per_peer.begin(), per_peer.end(),
                           [&](const auto& p) { return p.first == key.peer; });
    if (it == per_peer.end()) it = per_peer.insert(per_peer.end(), {key.peer, std::string()});
    encode_append(out, it->second);
    if (it->second.size() >= opts_.max_batch_bytes) send_payload(it->first, it->second);
  }
  for (auto& [peer, payload] : per_peer)
    if (!payload.empty()) send_payload(peer, payload);
}

void RequestServer::log_dropped(const std::string& peer, const std::string& why) {
  dropped_frames_.fetch_add(1);
  uint64_t suppressed = 0;
  if (drop_log_.allow(suppressed))
    WS_LOG_WARN("request server {}: dropped a frame from {}: {} ({} similar suppressed)", endpoint_,
                hex_id(peer), why, suppressed);
}

}  // namespace wideserve::runtime
