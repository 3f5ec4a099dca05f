// A group of ranks that run collectives together: the EP dispatcher, the multi-rank engine's
// control rounds and the online expert rebalance all go through it. Backends: in-process threads
// (tests, one-process engines) and Gloo over TCP (processes and hosts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace wideserve::dist {

// One rank's handle. Every rank must call the same collectives in the same order; a collective
// that does not complete within the group's timeout throws Error(kUnavailable).
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  // out [size * bytes]: block r = rank r's `in` (every rank sends `bytes` bytes).
  virtual void all_gather(const void* in, size_t bytes, void* out) = 0;
  // in [size * bytes]: block r goes to rank r; out [size * bytes]: block r came from rank r.
  virtual void all_to_all(const void* in, size_t bytes, void* out) = 0;
  // Variable all-to-all with sizes known on both sides: send_bytes[r] bytes of `in` (blocks back
  // to back, rank order) go to rank r; recv_bytes[r] bytes from rank r land in `out`, rank order.
  virtual void all_to_all_v(const void* in, std::span<const int64_t> send_bytes, void* out,
                            std::span<const int64_t> recv_bytes) = 0;
  // data [bytes] of rank `root` is copied to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
};

// Helpers built on the primitives (collectives.cpp).

// Gathers a variable-sized blob from every rank (sizes first, then the bytes).
std::vector<std::vector<char>> all_gather_v(ProcessGroup& pg, std::span<const char> mine);
// Sends blob r to rank r (counts first, then the bytes); returns the blob from each rank.
std::vector<std::vector<char>> exchange_blobs(ProcessGroup& pg,
                                              const std::vector<std::vector<char>>& per_rank);
// Element-wise sums over ranks, added in rank order (identical result on every rank).
void all_reduce_sum(ProcessGroup& pg, std::span<double> data);
void all_reduce_sum(ProcessGroup& pg, std::span<int64_t> data);
// Broadcasts a variable-sized blob from `root` (its size first).
std::vector<char> broadcast_v(ProcessGroup& pg, std::span<const char> blob, int root);

}  // namespace wideserve::dist
