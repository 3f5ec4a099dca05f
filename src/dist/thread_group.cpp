#include "dist/thread_group.h"

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "common/check.h"

namespace wideserve::dist {
namespace {

// What every rank publishes for the current collective.
struct Slot {
  const void* in = nullptr;
  const int64_t* send_bytes = nullptr;  // all_to_all_v only
  void* data = nullptr;                 // broadcast root's buffer
};

struct Shared {
  explicit Shared(int n, std::chrono::milliseconds t) : slots(n), size(n), timeout(t) {}
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Slot> slots;
  int size;
  int arrived = 0;
  uint64_t generation = 0;
  std::chrono::milliseconds timeout;
  bool broken = false;  // a rank timed out: the group is unusable

  void wait_all(int rank) {
    std::unique_lock<std::mutex> lk(mu);
    WS_CHECK_CODE(kUnavailable, !broken, "thread group: broken by an earlier timeout");
    const uint64_t gen = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    if (!cv.wait_for(lk, timeout, [&] { return generation != gen || broken; }) || broken) {
      broken = true;
      cv.notify_all();
      WS_THROW(kUnavailable, "thread group: rank {} waited {} ms for the other ranks", rank,
               timeout.count());
    }
  }
};

class ThreadGroup : public ProcessGroup {
 public:
  ThreadGroup(std::shared_ptr<Shared> s, int rank) : s_(std::move(s)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return s_->size; }
  void barrier() override { s_->wait_all(rank_); }

  void all_gather(const void* in, size_t bytes, void* out) override {
    s_->slots[rank_].in = in;
    s_->wait_all(rank_);
    for (int r = 0; r < s_->size; ++r)
      if (bytes) std::memcpy(static_cast<char*>(out) + r * bytes, s_->slots[r].in, bytes);
    s_->wait_all(rank_);  // inputs stay valid until everyone has copied
  }

  void all_to_all(const void* in, size_t bytes, void* out) override {
    s_->slots[rank_].in = in;
    s_->wait_all(rank_);
    for (int r = 0; r < s_->size; ++r)
      if (bytes)
        std::memcpy(static_cast<char*>(out) + r * bytes,
                    static_cast<const char*>(s_->slots[r].in) + rank_ * bytes, bytes);
    s_->wait_all(rank_);
  }

  void all_to_all_v(const void* in, std::span<const int64_t> send_bytes, void* out,
                    std::span<const int64_t> recv_bytes) override {
    s_->slots[rank_].in = in;
    s_->slots[rank_].send_bytes = send_bytes.data();
    s_->wait_all(rank_);
    int64_t off = 0;
    for (int r = 0; r < s_->size; ++r) {
      const int64_t* sb = s_->slots[r].send_bytes;
      int64_t src_off = 0;
      for (int q = 0; q < rank_; ++q) src_off += sb[q];
      WS_CHECK(sb[rank_] == recv_bytes[r],
               "all_to_all_v: rank {} sends {} bytes, rank {} expects {}", r, sb[rank_], rank_,
               recv_bytes[r]);
      if (sb[rank_])
        std::memcpy(static_cast<char*>(out) + off,
                    static_cast<const char*>(s_->slots[r].in) + src_off, sb[rank_]);
      off += recv_bytes[r];
    }
    s_->wait_all(rank_);
  }

  void broadcast(void* data, size_t bytes, int root) override {
    s_->slots[rank_].data = data;
    s_->wait_all(rank_);
    if (rank_ != root && bytes) std::memcpy(data, s_->slots[root].data, bytes);
    s_->wait_all(rank_);
  }

 private:
  std::shared_ptr<Shared> s_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<ProcessGroup>> make_thread_group(int n,
                                                             std::chrono::milliseconds timeout) {
  WS_CHECK_ARG(n >= 1, "thread group of {} ranks", n);
  auto shared = std::make_shared<Shared>(n, timeout);
  std::vector<std::unique_ptr<ProcessGroup>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<ThreadGroup>(shared, r));
  return out;
}

}  // namespace wideserve::dist
