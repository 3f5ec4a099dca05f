#include <cstring>

#include "common/check.h"
#include "dist/process_group.h"

namespace wideserve::dist {

std::vector<std::vector<char>> all_gather_v(ProcessGroup& pg, std::span<const char> mine) {
  const int n = pg.size();
  std::vector<int64_t> sizes(n);
  const int64_t my = static_cast<int64_t>(mine.size());
  pg.all_gather(&my, sizeof(int64_t), sizes.data());
  // Variable sizes travel as an all-to-all where every rank sends its blob to everyone.
  std::vector<int64_t> send(n, my);
  std::vector<char> in(static_cast<size_t>(my) * n);
  for (int r = 0; r < n; ++r)
    if (my) std::memcpy(in.data() + r * my, mine.data(), my);
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  std::vector<char> out(total);
  pg.all_to_all_v(in.data(), send, out.data(), sizes);
  std::vector<std::vector<char>> res(n);
  int64_t off = 0;
  for (int r = 0; r < n; ++r) {
    res[r].assign(out.begin() + off, out.begin() + off + sizes[r]);
    off += sizes[r];
  }
  return res;
}

std::vector<std::vector<char>> exchange_blobs(ProcessGroup& pg,
                                              const std::vector<std::vector<char>>& per_rank) {
  const int n = pg.size();
  WS_CHECK(static_cast<int>(per_rank.size()) == n, "exchange: {} blobs for {} ranks",
           per_rank.size(), n);
  std::vector<int64_t> send(n), recv(n);
  int64_t total_send = 0;
  for (int r = 0; r < n; ++r) total_send += (send[r] = static_cast<int64_t>(per_rank[r].size()));
  pg.all_to_all(send.data(), sizeof(int64_t), recv.data());
  std::vector<char> in(total_send);
  int64_t off = 0;
  for (int r = 0; r < n; ++r) {
    if (send[r]) std::memcpy(in.data() + off, per_rank[r].data(), send[r]);
    off += send[r];
  }
  int64_t total_recv = 0;
  for (int64_t s : recv) total_recv += s;
  std::vector<char> out(total_recv);
  pg.all_to_all_v(in.data(), send, out.data(), recv);
  std::vector<std::vector<char>> res(n);
  off = 0;
  for (int r = 0; r < n; ++r) {
    res[r].assign(out.begin() + off, out.begin() + off + recv[r]);
    off += recv[r];
  }
  return res;
}

namespace {
template <typename T>
void sum_impl(ProcessGroup& pg, std::span<T> data) {
  const int n = pg.size();
  std::vector<T> all(data.size() * n);
  pg.all_gather(data.data(), data.size_bytes(), all.data());
  for (size_t i = 0; i < data.size(); ++i) {
    T s = 0;
    for (int r = 0; r < n; ++r) s += all[r * data.size() + i];
    data[i] = s;
  }
}
}  // namespace

void all_reduce_sum(ProcessGroup& pg, std::span<double> data) {
  sum_impl(pg, data);
}
void all_reduce_sum(ProcessGroup& pg, std::span<int64_t> data) {
  sum_impl(pg, data);
}

std::vector<char> broadcast_v(ProcessGroup& pg, std::span<const char> blob, int root) {
  int64_t size = pg.rank() == root ? static_cast<int64_t>(blob.size()) : 0;
  pg.broadcast(&size, sizeof(size), root);
  std::vector<char> out(size);
  if (pg.rank() == root && size) std::memcpy(out.data(), blob.data(), size);
  if (size) pg.broadcast(out.data(), size, root);
  return out;
}

}  // namespace wideserve::dist
