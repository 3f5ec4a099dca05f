#include "transfer/agent_core.h"

#include "common/check.h"

#include <sys/eventfd.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>

namespace wideserve::transfer {

uint64_t TransferBook::create() {
  std::lock_guard lk(mu_);
  uint64_t id = next_id_++;
  status_.emplace(id, TransferStatus{});
  return id;
}

bool TransferBook::finish(uint64_t id, TransferState state, std::string error) {
  std::lock_guard lk(mu_);
  auto it = status_.find(id);
  if (it == status_.end() || it->second.state != TransferState::kPending) return false;
  it->second.state = state;
  it->second.error = std::move(error);
  cv_.notify_all();
  return true;
}

TransferStatus TransferBook::poll(uint64_t id) {
  std::lock_guard lk(mu_);
  auto it = status_.find(id);
  WS_CHECK_ARG(it != status_.end(), "unknown transfer handle {}", id);
  return it->second;
}

TransferStatus TransferBook::wait(uint64_t id, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  auto pending = [&] {
    auto it = status_.find(id);
    WS_CHECK_ARG(it != status_.end(), "unknown transfer handle {}", id);
    return it->second.state == TransferState::kPending;
  };
  cv_.wait_for(lk, timeout, [&] { return !pending(); });
  return status_.at(id);
}

bool TransferBook::pending(uint64_t id) {
  std::lock_guard lk(mu_);
  auto it = status_.find(id);
  return it != status_.end() && it->second.state == TransferState::kPending;
}

bool TransferBook::release(uint64_t id) {
  std::lock_guard lk(mu_);
  auto it = status_.find(id);
  if (it == status_.end()) return false;
  bool pending = it->second.state == TransferState::kPending;
  status_.erase(it);
  return pending;
}

void NotificationInbox::push(Notification n) {
  std::lock_guard lk(mu_);
  queue_.push_back(std::move(n));
  cv_.notify_all();
}

std::vector<Notification> NotificationInbox::take() {
  std::lock_guard lk(mu_);
  std::vector<Notification> out(std::make_move_iterator(queue_.begin()),
                                std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

std::vector<Notification> NotificationInbox::wait(std::chrono::milliseconds timeout) {
  {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] { return !queue_.empty(); });
  }
  return take();
}

CommandQueue::CommandQueue() {
  efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  WS_CHECK(efd_ >= 0, "eventfd: {}", std::strerror(errno));
}

CommandQueue::~CommandQueue() {
  if (efd_ >= 0) ::close(efd_);
}

void CommandQueue::post(std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(fn));
  }
  wake();
}

void CommandQueue::wake() {
  uint64_t one = 1;
  // A full counter (EAGAIN) still leaves the fd readable, which is all we need.
  [[maybe_unused]] ssize_t n = ::write(efd_, &one, sizeof(one));
}

size_t CommandQueue::drain() {
  uint64_t v;
  while (::read(efd_, &v, sizeof(v)) > 0) {
  }
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lk(mu_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) fn();
  return batch.size();
}

int find_remote_region(const std::vector<RemoteRegion>& regions, uint64_t addr, uint64_t len) {
  for (size_t i = 0; i < regions.size(); ++i) {
    const auto& r = regions[i];
    if (addr >= r.base && len <= r.length && addr - r.base <= r.length - len) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::vector<PlannedOp> plan_ops(const std::string& peer, const std::vector<RemoteRegion>& regions,
                                std::span<const WriteOp> ops) {
  std::vector<PlannedOp> out;
  out.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const WriteOp& op = ops[i];
    if (op.length == 0) continue;
    WS_CHECK_ARG(op.local != nullptr, "write op {} to peer '{}' has a null local address", i, peer);
    int region = find_remote_region(regions, op.remote, op.length);
    WS_CHECK_ARG(region >= 0,
                 "write op {} to peer '{}' ([0x{:x}, +{})) is outside every region the peer "
                 "registered",
                 i, peer, op.remote, op.length);
    const auto* local = static_cast<const char*>(op.local);
    if (!out.empty()) {
      PlannedOp& prev = out.back();
      const auto* prev_end = static_cast<const char*>(prev.op.local) + prev.op.length;
      if (prev.region == region && prev_end == local &&
          prev.op.remote + prev.op.length == op.remote) {
        prev.op.length += op.length;
        continue;
      }
    }
    out.push_back({op, region});
  }
  return out;
}

uint64_t PeerDirectory::new_generation() {
  std::lock_guard lk(mu_);
  return next_gen_++;
}

void PeerDirectory::set(const std::string& peer, uint64_t gen, std::vector<RemoteRegion> regions) {
  std::lock_guard lk(mu_);
  peers_[peer] = Entry{gen, std::move(regions)};
}

void PeerDirectory::erase(const std::string& peer) {
  std::lock_guard lk(mu_);
  peers_.erase(peer);
}

PeerDirectory::Plan PeerDirectory::plan(const std::string& peer, std::span<const WriteOp> ops,
                                        const std::string& notify) {
  WS_CHECK_ARG(notify.size() <= kMaxNotificationBytes, "notification of {} bytes exceeds {}",
               notify.size(), kMaxNotificationBytes);
  std::lock_guard lk(mu_);
  auto it = peers_.find(peer);
  WS_CHECK_ARG(it != peers_.end(), "unknown transfer peer '{}' (add_remote first)", peer);
  return Plan{it->second.gen, plan_ops(peer, it->second.regions, ops)};
}

std::vector<RemoteRegion> parse_peer_metadata(
    const std::string& peer, const std::string& metadata, const char* backend, bool with_rkey,
    const std::function<void(const nlohmann::json&)>& read_fields) {
  std::vector<RemoteRegion> regions;
  try {
    auto j = nlohmann::json::parse(metadata);
    std::string theirs = j.at("backend").get<std::string>();
    WS_CHECK_ARG(theirs == backend, "metadata of peer '{}' is for the {} backend, this agent is {}",
                 peer, theirs, backend);
    read_fields(j);
    for (const auto& r : j.at("regions")) {
      regions.push_back({r.at("base").get<uint64_t>(), r.at("length").get<uint64_t>(),
                         with_rkey ? base64_decode(r.at("rkey").get<std::string>()) : ""});
    }
  } catch (const nlohmann::json::exception& e) {
    WS_THROW(kInvalidArgument, "bad transfer metadata for peer '{}': {}", peer, e.what());
  }
  return regions;
}

void AgentBase::cancel(TransferHandle h) {
  if (!book_.finish(h.id, TransferState::kFailed, "cancelled")) return;
  cmdq_.post([this, id = h.id] { stop_transfer(id); });
}

void AgentBase::release(TransferHandle h) {
  if (!book_.release(h.id)) return;
  cmdq_.post([this, id = h.id] { stop_transfer(id); });
}

void AgentBase::start_progress() {
  thread_ = std::thread([this] { run(); });
}

void AgentBase::stop_progress() {
  stop_ = true;
  cmdq_.wake();
  thread_.join();
  cmdq_.set_owner(std::this_thread::get_id());
  cmdq_.drain();  // commands posted after the loop ended still get their answers
}

}  // namespace wideserve::transfer
