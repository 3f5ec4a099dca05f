// The vocabulary-split LM head over thread-backed ranks equals the whole head applied locally,
// with uneven slices and ranks that have no rows.
#include "model/vocab_parallel_head.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "backend/cpu/gemm.h"
#include "dist/thread_group.h"

namespace wideserve::model {
namespace {

TEST(VocabParallelHead, SlicesCoverTheVocabulary) {
  for (int n : {1, 2, 3, 7}) {
    int64_t next = 0;
    for (int r = 0; r < n; ++r) {
      const auto [b, e] = vocab_slice(37, n, r);
      EXPECT_EQ(b, next);
      EXPECT_GE(e - b, 37 / n);
      EXPECT_LE(e - b, 37 / n + 1);
      next = e;
    }
    EXPECT_EQ(next, 37);
  }
}

TEST(VocabParallelHead, EqualsTheWholeHeadOnEveryRank) {
  const int64_t V = 37, H = 24;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> head(V * H);
  for (auto& v : head) v = nd(rng);
  for (int n : {1, 2, 3, 4}) {
    SCOPED_TRACE(n);
    auto groups = dist::make_thread_group(n, std::chrono::seconds(30));
    // Rank r has (r * 2) % 5 rows: rank 0 none.
    std::vector<std::vector<float>> x(n), got(n), want(n);
    for (int r = 0; r < n; ++r) {
      const int64_t m = (r * 2) % 5;
      x[r].resize(m * H);
      for (auto& v : x[r]) v = nd(rng);
      want[r].resize(m * V);
      if (m > 0) cpu::linear(x[r].data(), head.data(), want[r].data(), m, V, H);
      got[r].assign(m * V, NAN);
    }
    std::vector<std::thread> ts;
    for (int r = 0; r < n; ++r)
      ts.emplace_back([&, r] {
        vocab_parallel_head(*groups[r], head.data(), V, H, x[r].data(),
                            static_cast<int64_t>(x[r].size() / H), got[r].data());
      });
    for (auto& t : ts) t.join();
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < got[r].size(); ++i)
        ASSERT_NEAR(got[r][i], want[r][i], 1e-4 * (1 + std::abs(want[r][i]))) << r << " " << i;
  }
}

}  // namespace
}  // namespace wideserve::model
