#include "runtime/kv_event_publisher.h"

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::runtime {

KvEventPublisher::KvEventPublisher(const std::string& bind_host, const std::string& advertise_host,
                                   int32_t dp_rank)
    : dp_rank_(dp_rank),
      pub_(ctx_, zmq::socket_type::pub),
      router_(ctx_, zmq::socket_type::router) {
  set_common_socket_options(pub_);
  set_common_socket_options(router_);
  const std::string bind = "tcp://" + bind_host + ":0";
  try {
    pub_.bind(bind);
    router_.bind(bind);
  } catch (const zmq::error_t& e) {
    WS_THROW(kUnavailable, "KV events: cannot bind {}: {}", bind, e.what());
  }
  events_endpoint_ = connectable_endpoint(pub_, advertise_host);
  state_endpoint_ = connectable_endpoint(router_, advertise_host);
  // A fresh process announces an empty cache, so a subscriber never keeps a predecessor's blocks.
  {
    std::lock_guard<std::mutex> lk(mu_);
    KvEvent e;
    e.kind = KvEventKind::kCleared;
    publish(std::move(e));
  }
  thread_ = std::thread([this] { serve_queries(); });
}

KvEventPublisher::~KvEventPublisher() {
  stop();
}

void KvEventPublisher::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  wake_.signal();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lk(mu_);
  pub_.close();
  router_.close();
}

KvState KvEventPublisher::state() const {
  std::lock_guard<std::mutex> lk(mu_);
  KvState s;
  s.last_event_id = last_event_id_;
  s.dp_rank = dp_rank_;
  s.blocks.assign(blocks_.begin(), blocks_.end());
  return s;
}

void KvEventPublisher::publish(KvEvent e) {
  e.event_id = ++last_event_id_;
  e.dp_rank = dp_rank_;
  if (stopped_) return;
  const std::string frame = encode_kv_event(e);
  // PUB never blocks; a message dropped at the high-water mark is a gap the subscriber resyncs.
  try {
    pub_.send(zmq::buffer(frame), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& err) {
    WS_LOG_WARN("KV events: publish failed: {}", err.what());
  }
}

void KvEventPublisher::on_stored(std::optional<uint64_t> parent,
                                 std::span<const kvcache::KvBlockHash> blocks) {
  std::lock_guard<std::mutex> lk(mu_);
  KvEvent e;
  e.kind = KvEventKind::kStored;
  e.parent_hash = parent;
  e.blocks.assign(blocks.begin(), blocks.end());
  for (const auto& b : blocks) blocks_.insert(b.hash);
  publish(std::move(e));
}

void KvEventPublisher::on_removed(std::span<const uint64_t> hashes) {
  std::lock_guard<std::mutex> lk(mu_);
  KvEvent e;
  e.kind = KvEventKind::kRemoved;
  e.removed.assign(hashes.begin(), hashes.end());
  for (uint64_t h : hashes) blocks_.erase(h);
  publish(std::move(e));
}

void KvEventPublisher::on_cleared() {
  std::lock_guard<std::mutex> lk(mu_);
  blocks_.clear();
  KvEvent e;
  e.kind = KvEventKind::kCleared;
  publish(std::move(e));
}

void KvEventPublisher::serve_queries() {
  zmq::pollitem_t items[2] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_.fd(), ZMQ_POLLIN, 0}};
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopped_) return;
    }
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      WS_LOG_ERROR("KV state server: poll failed: {}", e.what());
      return;
    }
    if (items[1].revents & ZMQ_POLLIN) wake_.drain();
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    // ROUTER: [peer identity, (empty delimiter from REQ peers), payload].
    std::vector<zmq::message_t> parts;
    for (;;) {
      zmq::message_t m;
      if (!router_.recv(m, zmq::recv_flags::dontwait)) break;
      const bool more = m.more();
      parts.push_back(std::move(m));
      if (!more) break;
    }
    if (parts.size() < 2) continue;
    std::string reply;
    try {
      const int32_t rank = decode_kv_state_query(parts.back().to_string_view());
      WS_CHECK_CODE(kInvalidArgument, rank == dp_rank_, "KV state query for dp rank {}, I am {}",
                    rank, dp_rank_);
      reply = encode_kv_state(state());
    } catch (const Error& e) {
      WS_LOG_WARN("KV state server: bad query: {}", e.what());
      continue;
    }
    for (size_t i = 0; i + 1 < parts.size(); ++i)
      router_.send(std::move(parts[i]), zmq::send_flags::sndmore);
    router_.send(zmq::buffer(reply), zmq::send_flags::none);
  }
}

}  // namespace wideserve::runtime
