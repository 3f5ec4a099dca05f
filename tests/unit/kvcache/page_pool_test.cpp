#include <gtest/gtest.h>

#include <numeric>

#include "common/check.h"
#include "kvcache/mla_kv_storage.h"
#include "kvcache/page_pool.h"

namespace wideserve::kvcache {
namespace {

TEST(PagePool, AllOrNothingAndReuse) {
  PagePool pool(4);
  std::vector<int32_t> a, b;
  EXPECT_TRUE(pool.alloc(3, &a));
  EXPECT_FALSE(pool.alloc(2, &b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.num_free(), 1);
  pool.free(a);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_THROW(pool.free(a), Error);  // double free is a bug, caught
  EXPECT_THROW(pool.free(std::vector<int32_t>{9}), Error);
}

TEST(MlaKvStorage, GatherFollowsThePageTable) {
  MlaKvStorage kv(2, 4, 3, 2);
  std::vector<int32_t> pages = {2, 0};
  for (int64_t pos = 0; pos < 5; ++pos) {
    float* r = kv.row(1, kv.slot(pages, pos));
    r[0] = static_cast<float>(pos);
    r[1] = -static_cast<float>(pos);
  }
  std::vector<float> out(10);
  kv.gather(1, pages, 5, out.data());
  for (int64_t pos = 0; pos < 5; ++pos) {
    EXPECT_EQ(out[pos * 2], pos);
    EXPECT_EQ(out[pos * 2 + 1], -pos);
  }
  EXPECT_EQ(kv.slot(pages, 4), 0 * 3 + 1);
}

}  // namespace
}  // namespace wideserve::kvcache
