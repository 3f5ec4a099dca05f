// Backend-independent parts of a transfer agent: transfer status book-keeping (poll/wait), the
// notification inbox, the command queue that hands work to the progress thread, and remote-region
// validation of write ops.
#pragma once

#include "common/base64.h"

#include "transfer/transfer_agent.h"

#include <condition_variable>
#include <deque>
#include <functional>
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

// Base64 for binary fields of the JSON metadata (common/base64.h): strictly padded; bad input
// from a peer throws Error(kInvalidArgument).
using wideserve::base64_encode;
inline std::string base64_decode(std::string_view text) {
  return wideserve::base64_decode(text, /*strict=*/true, ErrorCode::kInvalidArgument);
}

// ---- template implementation ----

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
