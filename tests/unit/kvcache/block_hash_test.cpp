// KV block hashes: compatibility with Dynamo's scheme (XXH3-64, seed 1337, little-endian u32
// token ids, chained per block), and the events the radix cache reports.
#include "kvcache/block_hash.h"

#include <gtest/gtest.h>

#include <numeric>
#include <unordered_set>

#include "common/check.h"
#include "kvcache/radix_cache.h"

namespace wideserve::kvcache {
namespace {

// Expected values made with Python's xxhash 4.1.0 (pip install xxhash):
//   local(t) = xxhash.xxh3_64_intdigest(struct.pack('<%dI' % len(t), *[x & 0xffffffff for x in t]),
//                                       seed=1337)
//   chain(parent, local) = xxhash.xxh3_64_intdigest(struct.pack('<QQ', parent, local), seed=1337)
TEST(BlockHash, LocalHashMatchesPythonXxhash) {
  EXPECT_EQ(local_block_hash(std::vector<int32_t>{1}), 0xc8355da0879e060dull);
  EXPECT_EQ(local_block_hash(std::vector<int32_t>{0, 1, 2, 3}), 0x7ee2cbedc694ab46ull);
  EXPECT_EQ(local_block_hash(std::vector<int32_t>{128000, 129279, 7, 65536}),
            0x7582ebd86c06a523ull);
  EXPECT_EQ(local_block_hash(std::vector<int32_t>{-1}), 0x2b26d3e8c52117e7ull);  // as u32
  EXPECT_EQ(local_block_hash(std::vector<int32_t>{}), 0xd1f3e77444430ab9ull);
}

TEST(BlockHash, ChainedHashesMatchPythonXxhash) {
  // tokens 100..111 in blocks of 4 (Python: local / chained per block, first block unchained).
  std::vector<int32_t> t(12);
  std::iota(t.begin(), t.end(), 100);
  const auto h = block_hashes(t, 4);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0], 0x57b89ffc89f07407ull);
  EXPECT_EQ(h[1], 0x2c31adba03ebb31aull);
  EXPECT_EQ(h[2], 0x2d9512d5eaba83aeull);
  EXPECT_EQ(chain_block_hash(0x57b89ffc89f07407ull, 0xebc3d407e04a3357ull), h[1]);
  EXPECT_EQ(local_block_hash(std::span<const int32_t>(t).subspan(4, 4)), 0xebc3d407e04a3357ull);
  // A trailing partial block is not hashed; the chain makes a block's hash depend on its prefix.
  t.push_back(5);
  EXPECT_EQ(block_hashes(t, 4), h);
  std::vector<int32_t> u = t;
  u[0] = 99;
  const auto g = block_hashes(u, 4);
  EXPECT_NE(g[1], h[1]);
  EXPECT_NE(g[2], h[2]);
  EXPECT_THROW(block_hashes(t, 0), Error);
}

// Records a cache's events and replays them into a block set.
struct RecordingSink : KvEventSink {
  std::unordered_set<uint64_t> blocks;
  int stored = 0, removed = 0, cleared = 0;
  bool parent_missing = false;
  void on_stored(std::optional<uint64_t> parent, std::span<const KvBlockHash> bs) override {
    ++stored;
    if (parent && !blocks.count(*parent)) parent_missing = true;
    for (const auto& b : bs) blocks.insert(b.hash);
  }
  void on_removed(std::span<const uint64_t> hs) override {
    ++removed;
    for (uint64_t h : hs) EXPECT_EQ(blocks.erase(h), 1u) << "removed a block never stored";
  }
  void on_cleared() override {
    ++cleared;
    blocks.clear();
  }
};

std::vector<int32_t> seq(int32_t start, int32_t n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(RadixCacheEvents, StoredRemovedClearedMirrorTheTree) {
  PagePool pool(16);
  RadixCache cache(pool, 4);
  auto sink = std::make_shared<RecordingSink>();
  cache.set_event_sink(sink);

  // Prompt A: 3 full pages.
  const auto a = seq(0, 12);
  std::vector<int32_t> pa;
  ASSERT_TRUE(cache.alloc_pages(3, &pa));
  cache.insert(a, pa);
  EXPECT_EQ(sink->stored, 1);
  const auto ha = block_hashes(a, 4);
  EXPECT_EQ(sink->blocks, std::unordered_set<uint64_t>(ha.begin(), ha.end()));

  // Prompt B shares A's first 2 pages: only its third page is new, chained under A's second.
  auto b = seq(0, 8);
  for (int32_t x : seq(500, 4)) b.push_back(x);
  std::vector<int32_t> pb;
  ASSERT_TRUE(cache.alloc_pages(3, &pb));
  cache.insert(b, pb);
  EXPECT_EQ(sink->stored, 2);
  EXPECT_FALSE(sink->parent_missing);
  const auto hb = block_hashes(b, 4);
  EXPECT_TRUE(sink->blocks.count(hb[2]));
  EXPECT_EQ(sink->blocks.size(), 4u);
  cache.check_invariants();

  // Eviction removes leaves first; the sink's set always equals the tree's.
  EXPECT_EQ(cache.evict(1), 1);
  EXPECT_EQ(sink->removed, 1);
  EXPECT_EQ(sink->blocks.size(), 3u);
  cache.check_invariants();
  // A match splits a node; the split keeps hashes with their pages (later events still agree).
  auto m = cache.match_prefix(seq(0, 6));
  cache.release(m.lock);
  cache.check_invariants();
  EXPECT_EQ(cache.evict(3), 3);
  EXPECT_TRUE(sink->blocks.empty());

  cache.insert(a, [&] {
    std::vector<int32_t> p;
    EXPECT_TRUE(cache.alloc_pages(3, &p));
    return p;
  }());
  EXPECT_EQ(sink->blocks.size(), 3u);
  cache.reset();
  EXPECT_EQ(sink->cleared, 1);
  EXPECT_TRUE(sink->blocks.empty());
  // A sink joins only an empty cache (it must learn every block).
  std::vector<int32_t> pc;
  ASSERT_TRUE(cache.alloc_pages(3, &pc));
  cache.insert(a, pc);
  EXPECT_THROW(cache.set_event_sink(sink), Error);
}

}  // namespace
}  // namespace wideserve::kvcache
