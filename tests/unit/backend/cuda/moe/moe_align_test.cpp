// GPU align (stable sort of (token, slot) pairs by expert) on both paths (the one-launch block for
// T*k <= kMoeAlignSmallSlots, the 3-launch sort) and the automatic choice, each compared exactly
// against the CPU stable counting sort: uniform / skewed / single-expert / out-of-range ids, EP
// slices, E from 1 to 1024, T*k from 0 to 65,536.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_ref.h"
#include "moe_test_util.h"

namespace wideserve::test {
namespace {

enum class Ids { kUniform, kSkewed, kOneExpert, kOutOfRange };

struct AlignCase {
  int64_t T, k, total, E, begin;
  Ids ids;
};

std::vector<int32_t> make_ids(const AlignCase& c, uint64_t seed) {
  if (c.ids == Ids::kOneExpert)
    return std::vector<int32_t>(c.T * c.k, static_cast<int32_t>(c.begin));
  auto ids = random_ids(c.T, c.k, c.total, seed, c.ids == Ids::kSkewed);
  if (c.ids == Ids::kOutOfRange)  // ids a router never gives (negative, >= every expert) skip
    for (size_t i = 0; i < ids.size(); i += 7)
      ids[i] = (i % 2) ? -5 : static_cast<int32_t>(c.total + 3);
  return ids;
}

const AlignCase kCases[] = {
    // V3 (E 256, k 8): decode batch sizes around the one-launch limit (T*k = 4096 at T = 512).
    {1, 8, 256, 256, 0, Ids::kUniform},
    {2, 8, 256, 256, 0, Ids::kUniform},
    {31, 8, 256, 256, 0, Ids::kSkewed},
    {64, 8, 256, 256, 0, Ids::kUniform},
    {256, 8, 256, 256, 0, Ids::kUniform},
    {257, 8, 256, 256, 0, Ids::kSkewed},
    {512, 8, 256, 256, 0, Ids::kUniform},
    {513, 8, 256, 256, 0, Ids::kUniform},
    {4096, 8, 256, 256, 0, Ids::kSkewed},
    {8192, 8, 256, 256, 0, Ids::kUniform},
    // V2 / V2-Lite (k 6).
    {100, 6, 160, 160, 0, Ids::kSkewed},
    {682, 6, 64, 64, 0, Ids::kUniform},
    {8192, 6, 64, 64, 0, Ids::kSkewed},
    // EP slices: local experts [begin, begin + E) of `total`.
    {1, 8, 256, 32, 64, Ids::kUniform},
    {64, 8, 256, 32, 64, Ids::kUniform},
    {257, 8, 256, 32, 224, Ids::kSkewed},
    {777, 8, 256, 32, 64, Ids::kUniform},
    {5000, 8, 256, 32, 224, Ids::kSkewed},
    // Every slot on one expert: 4096 rows in one counter (the one-launch path's 16-bit bound).
    {512, 8, 256, 256, 0, Ids::kOneExpert},
    {2048, 2, 8, 8, 0, Ids::kOneExpert},
    // Ids outside every slice, odd and tiny E, E = 1024.
    {300, 4, 13, 13, 0, Ids::kOutOfRange},
    {129, 2, 8, 8, 0, Ids::kUniform},
    {50, 1, 1, 1, 0, Ids::kUniform},
    {1024, 4, 1024, 1024, 0, Ids::kUniform},
    {2048, 4, 1024, 1024, 0, Ids::kUniform},
    {3, 3, 12, 12, 0, Ids::kUniform},
};

std::string path_name(cuda::MoePath p) {
  return p == cuda::MoePath::kSmall ? "small" : p == cuda::MoePath::kLarge ? "large" : "auto";
}

class CudaMoeAlignPaths : public ::testing::TestWithParam<cuda::MoePath> {};

TEST_P(CudaMoeAlignPaths, StableCountingSortMatchesReference) {
  WS_REQUIRE_GPU();
  const cuda::MoePath path = GetParam();
  uint64_t seed = 1;
  int64_t ran = 0;
  for (const auto& c : kCases) {
    const auto ids = make_ids(c, ++seed);
    const bool small_ok = c.T * c.k <= cuda::kMoeAlignSmallSlots;
    if (path == cuda::MoePath::kSmall && !small_ok) {
      EXPECT_ANY_THROW(run_align(ids, c.T, c.k, c.E, c.begin, path)) << c.T << "x" << c.k;
      continue;
    }
    const auto ref = cuda::ref::moe_align(ids, c.E, c.begin);
    auto o = run_align(ids, c.T, c.k, c.E, c.begin, path);
    const std::string at = path_name(path) + " T=" + std::to_string(c.T) +
                           " k=" + std::to_string(c.k) + " E=" + std::to_string(c.E) + "@" +
                           std::to_string(c.begin);
    EXPECT_EQ(o.counts.download(), ref.counts) << at;
    EXPECT_EQ(o.offsets.download(), ref.offsets) << at;
    EXPECT_EQ(o.sorted_to_slot.download(), ref.sorted_to_slot) << at;
    EXPECT_EQ(o.slot_to_sorted.download(), ref.slot_to_sorted) << at;
    ++ran;
  }
  EXPECT_GE(ran, 19);  // the one-launch path must see most cases (T*k <= 4096)
}

TEST_P(CudaMoeAlignPaths, NoSlotsGivesZeroCounts) {
  WS_REQUIRE_GPU();
  auto o = run_align({}, 0, 8, 256, 0, GetParam());
  EXPECT_EQ(o.counts.download(), std::vector<int32_t>(256, 0));
  EXPECT_EQ(o.offsets.download(), std::vector<int32_t>(257, 0));
}

INSTANTIATE_TEST_SUITE_P(Paths, CudaMoeAlignPaths,
                         ::testing::Values(cuda::MoePath::kLarge, cuda::MoePath::kSmall,
                                           cuda::MoePath::kAuto),
                         [](const auto& info) { return path_name(info.param); });

}  // namespace
}  // namespace wideserve::test
