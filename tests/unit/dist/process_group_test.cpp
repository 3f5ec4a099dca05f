#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "common/check.h"
#include "dist/gloo_group.h"
#include "dist/tcp_store.h"
#include "dist/thread_group.h"

namespace wideserve::dist {
namespace {

// Runs fn(pg) on every rank of `groups`, one thread each; rethrows the first failure.
void run_ranks(std::vector<std::unique_ptr<ProcessGroup>>& groups,
               const std::function<void(ProcessGroup&)>& fn) {
  std::vector<std::thread> ts;
  std::vector<std::exception_ptr> errs(groups.size());
  for (size_t r = 0; r < groups.size(); ++r)
    ts.emplace_back([&, r] {
      try {
        fn(*groups[r]);
      } catch (...) {
        errs[r] = std::current_exception();
      }
    });
  for (auto& t : ts) t.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
}

// The collectives every backend must get right.
void check_collectives(ProcessGroup& pg) {
  const int n = pg.size(), me = pg.rank();
  // all_gather
  int32_t v = 100 + me;
  std::vector<int32_t> all(n);
  pg.all_gather(&v, sizeof(v), all.data());
  for (int r = 0; r < n; ++r) EXPECT_EQ(all[r], 100 + r);
  // all_to_all: block r = me * 10 + r
  std::vector<int32_t> in(n), out(n);
  for (int r = 0; r < n; ++r) in[r] = me * 10 + r;
  pg.all_to_all(in.data(), sizeof(int32_t), out.data());
  for (int r = 0; r < n; ++r) EXPECT_EQ(out[r], r * 10 + me);
  // exchange: rank me sends (me + r) bytes of value me to rank r; some blobs are empty.
  std::vector<std::vector<char>> blobs(n);
  for (int r = 0; r < n; ++r) blobs[r].assign((me + r) % 3, static_cast<char>(me));
  auto got = exchange_blobs(pg, blobs);
  for (int r = 0; r < n; ++r) EXPECT_EQ(got[r], std::vector<char>((r + me) % 3, char(r)));
  // all_gather_v
  std::vector<char> mine(me, static_cast<char>('a' + me));
  auto g = all_gather_v(pg, mine);
  for (int r = 0; r < n; ++r) EXPECT_EQ(g[r], std::vector<char>(r, char('a' + r)));
  // all_reduce_sum
  std::vector<int64_t> s = {me, 1};
  all_reduce_sum(pg, std::span<int64_t>(s));
  EXPECT_EQ(s[0], n * (n - 1) / 2);
  EXPECT_EQ(s[1], n);
  // broadcast_v from the last rank
  std::string msg = "from " + std::to_string(n - 1);
  auto b = broadcast_v(pg, {msg.data(), me == n - 1 ? msg.size() : 0}, n - 1);
  EXPECT_EQ(std::string(b.begin(), b.end()), msg);
  pg.barrier();
}

TEST(ThreadGroup, Collectives) {
  for (int n : {1, 2, 3, 4}) {
    auto groups = make_thread_group(n);
    run_ranks(groups, check_collectives);
  }
}

TEST(ThreadGroup, MissingRankTimesOut) {
  auto groups = make_thread_group(2, std::chrono::milliseconds(100));
  EXPECT_THROW(groups[0]->barrier(), Error);
  // The group stays broken: the late rank fails too instead of hanging.
  EXPECT_THROW(groups[1]->barrier(), Error);
}

TEST(GlooGroup, CollectivesOverTcp) {
  TcpStoreServer server("127.0.0.1", 0);
  for (int n : {1, 2, 4}) {
    std::vector<std::unique_ptr<ProcessGroup>> groups(n);
    std::vector<std::thread> ts;
    for (int r = 0; r < n; ++r)
      ts.emplace_back([&, r] {
        GlooOptions o;
        o.store_port = server.port();
        o.prefix = "test" + std::to_string(n);
        o.timeout = std::chrono::seconds(20);
        groups[r] = make_gloo_group(r, n, o);
      });
    for (auto& t : ts) t.join();
    run_ranks(groups, check_collectives);
  }
}

TEST(TcpStore, MissingKeyTimesOut) {
  TcpStoreServer server("127.0.0.1", 0);
  TcpStore s("127.0.0.1", server.port(), std::chrono::milliseconds(100));
  s.set("a", {'x'});
  EXPECT_EQ(s.get("a"), std::vector<char>{'x'});
  EXPECT_THROW(s.get("b"), Error);
}

TEST(TcpStore, NoServerIsAnError) {
  TcpStoreServer server("127.0.0.1", 0);
  const int port = server.port();
  // A port nobody listens on (the server above holds `port`; port + 1 is very likely free).
  EXPECT_THROW(TcpStore("127.0.0.1", port + 1, std::chrono::milliseconds(200)), Error);
}

}  // namespace
}  // namespace wideserve::dist
