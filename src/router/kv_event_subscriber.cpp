#include "router/kv_event_subscriber.h"

#include <zmq.hpp>

#include <chrono>
#include <deque>
#include <map>

#include "common/check.h"
#include "common/logging.h"
#include "runtime/kv_events.h"

namespace wideserve::router {
namespace {

using Clock = std::chrono::steady_clock;
// A state query unanswered this long is sent again (the worker may have been busy or restarted).
constexpr auto kStateRetry = std::chrono::seconds(1);
// Events held while a resync is pending; beyond this the oldest are dropped (the resync after
// the state answer then detects the gap again).
constexpr size_t kMaxBuffered = 1 << 16;

}  // namespace

// Thread-owned state of one followed worker: its event stream and, per DP rank, the sync state.
struct KvEventSubscriber::Worker {
  struct Rank {
    bool syncing = true;  // waiting for a state answer; events go to `buffered`
    Clock::time_point asked{};
    std::deque<runtime::KvEvent> buffered;
  };
  std::string id;
  int32_t dp_size = 1;
  zmq::socket_t sub;
  zmq::socket_t dealer;
  std::map<int32_t, Rank> ranks;
};

KvEventSubscriber::KvEventSubscriber(std::shared_ptr<KvIndex> index) : index_(std::move(index)) {
  WS_CHECK_ARG(index_ != nullptr, "KV event subscriber needs an index");
  thread_ = std::thread([this] { loop(); });
}

KvEventSubscriber::~KvEventSubscriber() {
  stop();
}

void KvEventSubscriber::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.signal();
  if (thread_.joinable()) thread_.join();
}

void KvEventSubscriber::add_worker(const std::string& instance_id,
                                   const std::string& events_endpoint,
                                   const std::string& state_endpoint, int32_t dp_size) {
  if (events_endpoint.empty() || state_endpoint.empty()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    commands_.push_back({true, instance_id, events_endpoint, state_endpoint, std::max(1, dp_size)});
  }
  wake_.signal();
}

void KvEventSubscriber::remove_worker(const std::string& instance_id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    commands_.push_back({false, instance_id, {}, {}, 1});
  }
  wake_.signal();
}

KvSubscriberStats KvEventSubscriber::stats(const std::string& instance_id) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = stats_.find(instance_id);
  return it == stats_.end() ? KvSubscriberStats{} : it->second;
}

void KvEventSubscriber::request_state(Worker& w, int32_t dp_rank) {
  auto& r = w.ranks[dp_rank];
  r.syncing = true;
  r.asked = Clock::now();
  const std::string q = runtime::encode_kv_state_query(dp_rank);
  w.dealer.send(zmq::buffer(q), zmq::send_flags::dontwait);
}

void KvEventSubscriber::handle_event(Worker& w, const std::string& frame) {
  runtime::KvEvent e;
  try {
    e = runtime::decode_kv_event(frame);
  } catch (const Error& err) {
    WS_LOG_WARN("KV events from {}: {}", w.id, err.what());
    return;
  }
  auto it = w.ranks.find(e.dp_rank);
  if (it == w.ranks.end()) {
    // A rank the worker did not announce (it grew): sync it like the others.
    if (e.dp_rank < 0) return;
    request_state(w, e.dp_rank);
    it = w.ranks.find(e.dp_rank);
  }
  Worker::Rank& rank = it->second;
  if (rank.syncing) {
    if (rank.buffered.size() >= kMaxBuffered) rank.buffered.pop_front();
    rank.buffered.push_back(std::move(e));
    return;
  }
  const ApplyResult r = index_->apply(WorkerRank{w.id, e.dp_rank}, e);
  if (r == ApplyResult::kApplied) {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_[w.id].events;
  } else if (r == ApplyResult::kGap) {
    WS_LOG_INFO("KV events from {} rank {}: gap before event {}; resyncing", w.id, e.dp_rank,
                e.event_id);
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++stats_[w.id].gaps;
    }
    const int32_t dp_rank = e.dp_rank;
    rank.buffered.push_back(std::move(e));
    request_state(w, dp_rank);
  }
}

void KvEventSubscriber::handle_state(Worker& w, const std::string& frame) {
  runtime::KvState s;
  try {
    s = runtime::decode_kv_state(frame);
  } catch (const Error& err) {
    WS_LOG_WARN("KV state from {}: {}", w.id, err.what());
    return;
  }
  auto it = w.ranks.find(s.dp_rank);
  // Not asked for, or the answer to a query already satisfied.
  if (it == w.ranks.end() || !it->second.syncing) return;
  Worker::Rank& sync = it->second;
  const WorkerRank rank{w.id, s.dp_rank};
  index_->reset(rank, s);
  sync.syncing = false;
  uint64_t applied = 0;
  bool gap = false;
  for (auto& e : sync.buffered) {
    const ApplyResult r = index_->apply(rank, e);
    if (r == ApplyResult::kApplied) ++applied;
    if (r == ApplyResult::kGap) {
      gap = true;
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto& st = stats_[w.id];
    st.resyncs += 1;
    st.events += applied;
    if (gap) st.gaps += 1;
  }
  sync.buffered.clear();
  if (gap) request_state(w, s.dp_rank);
}

void KvEventSubscriber::loop() {
  std::unordered_map<std::string, std::unique_ptr<Worker>> workers;
  std::vector<zmq::pollitem_t> items;
  std::vector<std::pair<Worker*, bool>> owners;  // per item after the wakeup: (worker, is_sub)
  for (;;) {
    std::vector<Command> cmds;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopping_) break;
      cmds.swap(commands_);
    }
    for (auto& c : cmds) {
      // Here, on the thread that applies events, so no late event resurrects the entry.
      workers.erase(c.id);
      index_->remove_worker(c.id);
      {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.erase(c.id);
      }
      if (!c.add) continue;
      auto w = std::make_unique<Worker>();
      w->id = c.id;
      w->dp_size = c.dp_size;
      try {
        w->sub = zmq::socket_t(ctx_, zmq::socket_type::sub);
        w->dealer = zmq::socket_t(ctx_, zmq::socket_type::dealer);
        runtime::set_common_socket_options(w->sub);
        runtime::set_common_socket_options(w->dealer);
        w->sub.set(zmq::sockopt::subscribe, "");
        w->sub.connect(c.events);
        w->dealer.connect(c.state);
      } catch (const zmq::error_t& e) {
        WS_LOG_WARN("KV events: cannot follow worker {} ({} / {}): {}", c.id, c.events, c.state,
                    e.what());
        continue;
      }
      // Subscribe first, then ask for the states: events published in between are buffered.
      for (int32_t r = 0; r < w->dp_size; ++r) request_state(*w, r);
      workers[c.id] = std::move(w);
    }
    items.clear();
    owners.clear();
    items.push_back({nullptr, wake_.fd(), ZMQ_POLLIN, 0});
    for (auto& [id, w] : workers) {
      items.push_back({w->sub.handle(), 0, ZMQ_POLLIN, 0});
      owners.push_back({w.get(), true});
      items.push_back({w->dealer.handle(), 0, ZMQ_POLLIN, 0});
      owners.push_back({w.get(), false});
    }
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(200));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      WS_LOG_ERROR("KV events: poll failed: {}", e.what());
      break;
    }
    if (items[0].revents & ZMQ_POLLIN) wake_.drain();
    for (size_t i = 1; i < items.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      auto [w, is_sub] = owners[i - 1];
      zmq::socket_t& s = is_sub ? w->sub : w->dealer;
      for (int n = 0; n < 1024; ++n) {  // bounded, so one busy worker cannot starve the others
        zmq::message_t m;
        if (!s.recv(m, zmq::recv_flags::dontwait)) break;
        if (is_sub)
          handle_event(*w, m.to_string());
        else
          handle_state(*w, m.to_string());
      }
    }
    const auto now = Clock::now();
    for (auto& [id, w] : workers)
      for (auto& [r, sync] : w->ranks)
        if (sync.syncing && now - sync.asked > kStateRetry) request_state(*w, r);
  }
  workers.clear();
}

}  // namespace wideserve::router
