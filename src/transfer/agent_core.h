// Backend-independent parts of a transfer agent: transfer status book-keeping (poll/wait), the
// notification inbox, the command queue that hands work to the progress thread, the API-thread
// directory of peers that validates writes, metadata parsing, and AgentBase, which wires these
// into the TransferAgent calls every backend answers the same way.
#pragma once

#include "common/base64.h"

#include "transfer/transfer_agent.h"

#include <fmt/format.h>
#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace wideserve::transfer {

// Status of every live transfer, shared between API threads and the progress thread.
class TransferBook {
 public:
  // Creates a pending transfer and returns its id.
  uint64_t create();
  // Moves a pending transfer to kDone/kFailed; returns false if it was not pending (or is gone).
  bool finish(uint64_t id, TransferState state, std::string error = {});
  // Current status; throws kInvalidArgument for an unknown (released) id.
  TransferStatus poll(uint64_t id);
  // Waits until not pending or timeout; returns the status.
  TransferStatus wait(uint64_t id, std::chrono::milliseconds timeout);
  // Whether the transfer exists and is pending.
  bool pending(uint64_t id);
  // Forgets a transfer; returns whether it was still pending.
  bool release(uint64_t id);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, TransferStatus> status_;
};

// Notifications received and not yet taken.
class NotificationInbox {
 public:
  void push(Notification n);
  std::vector<Notification> take();
  std::vector<Notification> wait(std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Notification> queue_;
};

// Functions queued for the progress thread, plus an eventfd that wakes it when work arrives.
class CommandQueue {
 public:
  CommandQueue();
  ~CommandQueue();
  // The fd to poll for readability; drain() clears it.
  int wake_fd() const { return efd_; }
  // Queues `fn` and wakes the progress thread.
  void post(std::function<void()> fn);
  // Runs `fn` on the progress thread and waits for its result (rethrowing its exception). Runs
  // inline when called on the progress thread itself.
  template <typename F>
  auto call(F fn) -> decltype(fn());
  // Runs every queued function (progress thread only); returns how many ran.
  size_t drain();
  // Marks the calling thread as the progress thread.
  void set_owner(std::thread::id id) { owner_ = id; }
  // Wakes the progress thread without queueing work.
  void wake();

 private:
  int efd_ = -1;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
  std::thread::id owner_;
};

// A region a peer exported in its metadata.
struct RemoteRegion {
  uint64_t base = 0;
  uint64_t length = 0;
  std::string rkey;  // backend-specific packed remote key (ucx), empty for tcp
};

// Index of the region holding [addr, addr + len), or -1.
int find_remote_region(const std::vector<RemoteRegion>& regions, uint64_t addr, uint64_t len);

// Validates ops against a peer's regions (throws kInvalidArgument naming the op) and returns the
// merged ops with, for each, the index of its region.
struct PlannedOp {
  WriteOp op;
  int region = -1;
};
std::vector<PlannedOp> plan_ops(const std::string& peer, const std::vector<RemoteRegion>& regions,
                                std::span<const WriteOp> ops);

// API-thread view of the peers (generation and exported regions), so write() validates without a
// round trip to the progress thread. Each add_remote gives the peer a new generation: a write
// planned against one generation fails instead of reaching a replacement peer.
class PeerDirectory {
 public:
  // A write validated against the directory.
  struct Plan {
    uint64_t gen = 0;
    std::vector<PlannedOp> ops;
  };

  // A fresh generation number.
  uint64_t new_generation();
  // Records `peer` at generation `gen` with its regions, replacing any earlier entry.
  void set(const std::string& peer, uint64_t gen, std::vector<RemoteRegion> regions);
  // Records `peer` at a fresh generation and runs then(gen) under the same lock, so that what
  // then() posts to the progress thread arrives there in generation order.
  template <typename F>
  void add(const std::string& peer, std::vector<RemoteRegion> regions, F then);
  // Forgets `peer` (unknown names are ignored).
  void erase(const std::string& peer);
  // Validates a write (notification size, known peer, ops inside its regions; kInvalidArgument
  // otherwise) and returns the peer's generation and the merged ops.
  Plan plan(const std::string& peer, std::span<const WriteOp> ops, const std::string& notify);

 private:
  struct Entry {
    uint64_t gen = 0;
    std::vector<RemoteRegion> regions;
  };
  std::mutex mu_;
  std::map<std::string, Entry> peers_;
  uint64_t next_gen_ = 1;
};

// Parses a peer's metadata blob: checks it is for `backend`, reads its regions (with their "rkey"
// when `with_rkey`) and hands the document to read_fields for the backend's own fields. A blob of
// another backend or a malformed one throws kInvalidArgument naming the peer.
std::vector<RemoteRegion> parse_peer_metadata(
    const std::string& peer, const std::string& metadata, const char* backend, bool with_rkey,
    const std::function<void(const nlohmann::json&)>& read_fields);

// Progress-thread admission of a transfer that write() planned against generation `gen` of
// `peer`: returns the peer while it is that generation, healthy, and the transfer still pending;
// otherwise fails the transfer in `book` (unless it was cancelled or released) and returns null.
template <typename PeerMap>
auto admit_transfer(TransferBook& book, PeerMap& peers, const std::string& peer, uint64_t gen,
                    uint64_t id) -> decltype(peers.begin()->second.get());

// What every backend does alike: options, transfer book, notification inbox, command queue,
// progress thread and peer directory, and the TransferAgent calls answered from them alone.
// A backend implements run() (the progress loop), stop_transfer() and the rest of the interface;
// its constructor calls start_progress() and its destructor stop_progress() first.
class AgentBase : public TransferAgent {
 public:
  const std::string& name() const override { return opts_.name; }
  TransferStatus poll(TransferHandle h) override { return book_.poll(h.id); }
  TransferStatus wait(TransferHandle h, std::chrono::milliseconds t) override {
    return book_.wait(h.id, t);
  }
  // Fails the transfer as "cancelled", then has the progress thread stop sending it.
  void cancel(TransferHandle h) override;
  // Forgets the transfer; a pending one is also stopped on the progress thread.
  void release(TransferHandle h) override;
  std::vector<Notification> take_notifications() override { return inbox_.take(); }
  std::vector<Notification> wait_notifications(std::chrono::milliseconds t) override {
    return inbox_.wait(t);
  }

 protected:
  explicit AgentBase(const AgentOptions& opts) : opts_(opts) {}
  // Starts the progress thread running run().
  void start_progress();
  // Ends the progress loop, joins it, then runs the commands still queued on the calling thread
  // (which becomes the command queue's owner) so that their callers get answers.
  void stop_progress();
  // Whether stop_progress() asked the loop to end.
  bool stopping() const { return stop_; }
  // The progress loop; returns once stopping().
  virtual void run() = 0;
  // Stops sending transfer `id`, whose status is already final or released (progress thread).
  virtual void stop_transfer(uint64_t id) = 0;

  AgentOptions opts_;
  TransferBook book_;
  NotificationInbox inbox_;
  mutable CommandQueue cmdq_;
  PeerDirectory directory_;

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// Base64 for binary fields of the JSON metadata (common/base64.h): strictly padded; bad input
// from a peer throws Error(kInvalidArgument).
using wideserve::base64_encode;
inline std::string base64_decode(std::string_view text) {
  return wideserve::base64_decode(text, /*strict=*/true, ErrorCode::kInvalidArgument);
}

// ---- template implementation ----

template <typename F>
void PeerDirectory::add(const std::string& peer, std::vector<RemoteRegion> regions, F then) {
  std::lock_guard lk(mu_);
  uint64_t gen = next_gen_++;
  peers_[peer] = Entry{gen, std::move(regions)};
  then(gen);
}

template <typename PeerMap>
auto admit_transfer(TransferBook& book, PeerMap& peers, const std::string& peer, uint64_t gen,
                    uint64_t id) -> decltype(peers.begin()->second.get()) {
  auto it = peers.find(peer);
  if (it == peers.end() || it->second->gen != gen) {
    book.finish(id, TransferState::kFailed, fmt::format("peer '{}' was removed or replaced", peer));
    return nullptr;
  }
  auto* p = it->second.get();
  if (p->failed) {
    book.finish(id, TransferState::kFailed, p->error);
    return nullptr;
  }
  if (!book.pending(id)) return nullptr;  // cancelled or released before it started
  return p;
}

template <typename F>
auto CommandQueue::call(F fn) -> decltype(fn()) {
  using R = decltype(fn());
  if (std::this_thread::get_id() == owner_) return fn();
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr err;
  std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result;
  post([&] {
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
      } else {
        result.emplace(fn());
      }
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard lk(m);
    done = true;
    cv.notify_all();
  });
  std::unique_lock lk(m);
  cv.wait(lk, [&] { return done; });
  if (err) std::rethrow_exception(err);
  if constexpr (!std::is_void_v<R>) return std::move(*result);
}

}  // namespace wideserve::transfer
