#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "common/check.h"
#include "common/thread_pool.h"

namespace wideserve {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  ThreadPool pool(4);
  for (size_t n : {1u, 7u, 1000u, 100003u}) {
    std::vector<std::atomic<int>> hit(n);
    pool.parallel_for(n, 3, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) hit[i]++;
    });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hit[i].load(), 1) << i;
  }
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(3);
  std::atomic<int> total{0};
  pool.parallel_for(8, 1, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i)
      global_thread_pool().parallel_for(10, 1,
                                        [&](size_t b2, size_t e2) { total += int(e2 - b2); });
  });
  EXPECT_EQ(total.load(), 80);
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(4);
  EXPECT_THROW(pool.parallel_for(100, 1,
                                 [&](size_t b, size_t e) {
                                   if (b <= 50 && 50 < e) WS_THROW(kInternal, "boom");
                                 }),
               Error);
  // The pool keeps working afterwards.
  std::atomic<int> n{0};
  pool.parallel_for(100, 1, [&](size_t b, size_t e) { n += int(e - b); });
  EXPECT_EQ(n.load(), 100);
}

TEST(Check, MessagesCarryFileAndLine) {
  try {
    WS_CHECK_ARG(1 == 2, "value {} is bad", 7);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("value 7 is bad (thread_pool_test.cpp:"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace wideserve
