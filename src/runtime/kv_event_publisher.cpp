#include "runtime/kv_event_publisher.h"

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::runtime {

// Forwards one rank's cache changes to the publisher.
class KvEventPublisher::RankSink : public kvcache::KvEventSink {
 public:
  RankSink(KvEventPublisher* p, int32_t dp_rank) : p_(p), dp_rank_(dp_rank) {}
  void on_stored(std::optional<uint64_t> parent,
                 std::span<const kvcache::KvBlockHash> blocks) override {
    std::lock_guard<std::mutex> lk(p_->mu_);
    KvEvent e;
    e.kind = KvEventKind::kStored;
    e.parent_hash = parent;
    e.blocks.assign(blocks.begin(), blocks.end());
    auto& set = p_->rank(dp_rank_).blocks;
    for (const auto& b : blocks) set.insert(b.hash);
    p_->publish(dp_rank_, std::move(e));
  }
  void on_removed(std::span<const uint64_t> hashes) override {
    std::lock_guard<std::mutex> lk(p_->mu_);
    KvEvent e;
    e.kind = KvEventKind::kRemoved;
    e.removed.assign(hashes.begin(), hashes.end());
    auto& set = p_->rank(dp_rank_).blocks;
    for (uint64_t h : hashes) set.erase(h);
    p_->publish(dp_rank_, std::move(e));
  }
  void on_cleared() override {
    std::lock_guard<std::mutex> lk(p_->mu_);
    p_->rank(dp_rank_).blocks.clear();
    KvEvent e;
    e.kind = KvEventKind::kCleared;
    p_->publish(dp_rank_, std::move(e));
  }

 private:
  KvEventPublisher* p_;
  const int32_t dp_rank_;
};

KvEventPublisher::KvEventPublisher(const std::string& bind_host, const std::string& advertise_host,
                                   std::vector<int32_t> dp_ranks)
    : pub_(ctx_, zmq::socket_type::pub), router_(ctx_, zmq::socket_type::router) {
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
  WS_CHECK_ARG(!dp_ranks.empty(), "KV event publisher without ranks");
  // A fresh process announces empty caches, so a subscriber never keeps a predecessor's blocks.
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (int32_t r : dp_ranks) {
      WS_CHECK_ARG(r >= 0 && ranks_.emplace(r, Rank{}).second,
                   "KV event publisher: bad or repeated dp rank {}", r);
      KvEvent e;
      e.kind = KvEventKind::kCleared;
      publish(r, std::move(e));
    }
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

std::shared_ptr<kvcache::KvEventSink> KvEventPublisher::sink(int32_t dp_rank) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    rank(dp_rank);
  }
  return std::make_shared<RankSink>(this, dp_rank);
}

KvEventPublisher::Rank& KvEventPublisher::rank(int32_t dp_rank) {
  auto it = ranks_.find(dp_rank);
  WS_CHECK_ARG(it != ranks_.end(), "KV event publisher: dp rank {} is not published here", dp_rank);
  return it->second;
}

KvState KvEventPublisher::state(int32_t dp_rank) const {
  std::lock_guard<std::mutex> lk(mu_);
  KvState s;
  s.dp_rank = dp_rank;
  if (auto it = ranks_.find(dp_rank); it != ranks_.end()) {
    s.last_event_id = it->second.last_event_id;
    s.blocks.assign(it->second.blocks.begin(), it->second.blocks.end());
  }
  return s;
}

void KvEventPublisher::publish(int32_t dp_rank, KvEvent e) {
  e.event_id = ++rank(dp_rank).last_event_id;
  e.dp_rank = dp_rank;
  if (stopped_) return;
  const std::string frame = encode_kv_event(e);
  // PUB never blocks; a message dropped at the high-water mark is a gap the subscriber resyncs.
  try {
    pub_.send(zmq::buffer(frame), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& err) {
    WS_LOG_WARN("KV events: publish failed: {}", err.what());
  }
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
      // A rank of this worker that lives on another node answers empty (see state()).
      reply = encode_kv_state(state(decode_kv_state_query(parts.back().to_string_view())));
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
