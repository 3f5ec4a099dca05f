#include "kvcache/radix_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>

#include "common/check.h"

namespace wideserve::kvcache {
namespace {

using Ids = std::vector<int32_t>;

constexpr int32_t kPage = 4;

// Tokens base, base+1, ..., n of them.
Ids seq(int32_t n, int32_t base = 100) {
  Ids t(n);
  std::iota(t.begin(), t.end(), base);
  return t;
}

Ids concat(Ids a, const Ids& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Ids alloc(PagePool& pool, int32_t n) {
  Ids out;
  EXPECT_TRUE(pool.alloc(n, &out));
  return out;
}

uint64_t constant_hash(std::span<const int32_t>) {
  return 7;
}

TEST(RadixCache, MatchAfterInsertReturnsTheInsertedPages) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids tokens = seq(14);
  Ids pages = alloc(pool, 3);  // 12 full tokens; the caller frees its own partial tail
  InsertResult ins = cache.insert(tokens, pages);
  EXPECT_EQ(ins.num_cached_tokens, 0);
  EXPECT_EQ(ins.pages, pages);
  EXPECT_TRUE(ins.lock.empty());
  EXPECT_EQ(cache.cached_pages(), 3);
  EXPECT_EQ(cache.evictable_pages(), 3);

  MatchResult m = cache.match_prefix(tokens);
  EXPECT_EQ(m.pages, pages);
  EXPECT_EQ(m.num_tokens, 12);
  EXPECT_FALSE(m.lock.empty());
  EXPECT_EQ(cache.evictable_pages(), 0);
  cache.check_invariants();
  cache.release(m.lock);
  EXPECT_EQ(cache.evictable_pages(), 3);
  cache.check_invariants();

  MatchResult miss = cache.match_prefix(seq(14, 500));
  EXPECT_TRUE(miss.pages.empty());
  EXPECT_EQ(miss.num_tokens, 0);
  EXPECT_TRUE(miss.lock.empty());
  cache.release(miss.lock);  // empty handle: no-op
}

TEST(RadixCache, PartialPagePrefixesAreNotMatched) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids pages = alloc(pool, 2);
  cache.insert(seq(8), pages);
  // Shares 7 tokens: only the first whole page counts.
  Ids query = concat(seq(7), {999, 1000, 1001});
  MatchResult m = cache.match_prefix(query);
  EXPECT_EQ(m.pages, Ids{pages[0]});
  EXPECT_EQ(m.num_tokens, kPage);
  cache.release(m.lock);
  // Diverges inside the first page: nothing.
  MatchResult none = cache.match_prefix(concat(seq(3), {999, 1, 2, 3, 4, 5}));
  EXPECT_EQ(none.num_tokens, 0);
  cache.check_invariants();
}

TEST(RadixCache, AtLeastOneTokenIsLeftUncached) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids pages = alloc(pool, 2);
  cache.insert(seq(8), pages);
  const Ids prompt = seq(8);
  auto matched = [&](int32_t n) {
    MatchResult m = cache.match_prefix(std::span(prompt).first(n));
    cache.release(m.lock);
    return m.num_tokens;
  };
  EXPECT_EQ(matched(0), 0);
  EXPECT_EQ(matched(4), 0);  // the whole prompt cached in one page: its last token is recomputed
  EXPECT_EQ(matched(5), 4);
  EXPECT_EQ(matched(8), 4);
  EXPECT_EQ(cache.match_prefix(seq(9)).num_tokens, 8);
  PagePool pool1(4);
  RadixCache by_token(pool1, 1);
  by_token.insert(seq(3), alloc(pool1, 3));
  EXPECT_EQ(by_token.match_prefix(seq(3)).num_tokens, 2);
}

TEST(RadixCache, InsertDivergingInsideAnEdgeSplitsIt) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids a_tokens = seq(16);
  Ids a_pages = alloc(pool, 4);
  cache.insert(a_tokens, a_pages);

  // Same first two pages, then different content.
  Ids b_tokens = concat(seq(8), seq(8, 700));
  Ids b_pages = alloc(pool, 4);
  const int32_t free_before = pool.num_free();
  InsertResult ins = cache.insert(b_tokens, b_pages);
  EXPECT_EQ(ins.num_cached_tokens, 8);
  EXPECT_EQ(ins.pages, (Ids{a_pages[0], a_pages[1], b_pages[2], b_pages[3]}));
  EXPECT_EQ(pool.num_free(), free_before + 2);  // b's duplicate first two pages went back
  EXPECT_EQ(cache.cached_pages(), 6);
  cache.check_invariants();

  MatchResult ma = cache.match_prefix(concat(a_tokens, {1}));
  EXPECT_EQ(ma.pages, a_pages);
  MatchResult mb = cache.match_prefix(concat(b_tokens, {1}));
  EXPECT_EQ(mb.pages, ins.pages);
  cache.check_invariants();
  cache.release(ma.lock);
  cache.release(mb.lock);
  cache.check_invariants();
}

TEST(RadixCache, MatchEndingInsideAnEdgeLocksOnlyTheMatchedPages) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids pages = alloc(pool, 4);
  cache.insert(seq(16), pages);
  MatchResult m = cache.match_prefix(concat(seq(4), seq(12, 900)));
  EXPECT_EQ(m.pages, Ids{pages[0]});
  EXPECT_EQ(cache.evictable_pages(), 3);
  cache.check_invariants();
  EXPECT_EQ(cache.evict(10), 3);
  EXPECT_EQ(cache.cached_pages(), 1);
  cache.release(m.lock);
  EXPECT_EQ(cache.evict(10), 1);
  EXPECT_EQ(pool.num_free(), 16);
}

TEST(RadixCache, InsertKeepsTheRequestsOwnLockedPrefix) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids first = alloc(pool, 2);
  cache.insert(seq(8), first);

  // A request reuses the cached 2 pages, computes 2 more plus a partial tail.
  Ids tokens = seq(18);
  MatchResult m = cache.match_prefix(tokens);
  ASSERT_EQ(m.pages, first);
  Ids table = m.pages;
  Ids own = alloc(pool, 3);
  table.insert(table.end(), own.begin(), own.end());
  InsertResult ins = cache.insert(tokens, std::span(table).first(4));
  EXPECT_EQ(ins.num_cached_tokens, 8);
  EXPECT_EQ(ins.pages, Ids(table.begin(), table.begin() + 4));
  cache.release(m.lock);
  pool.free(std::span(table).subspan(4));  // the partial tail stays the caller's
  EXPECT_EQ(cache.cached_pages(), 4);
  EXPECT_EQ(pool.num_free() + cache.cached_pages(), 16);
  cache.check_invariants();
}

TEST(RadixCache, InsertWithLockHandsBackTheTreePages) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids a = alloc(pool, 2);
  cache.insert(seq(8), a);
  Ids b = alloc(pool, 3);  // computed the same 8 tokens without a cache hit, plus one page
  InsertResult ins = cache.insert(seq(12), b, /*lock=*/true);
  EXPECT_EQ(ins.pages, (Ids{a[0], a[1], b[2]}));
  EXPECT_FALSE(ins.lock.empty());
  EXPECT_EQ(cache.evictable_pages(), 0);
  EXPECT_EQ(cache.evict(3), 0);
  cache.check_invariants();
  cache.release(ins.lock);
  EXPECT_EQ(cache.evict(3), 3);
}

TEST(RadixCache, BadInsertsAreRejectedAndLeaveTheCacheConsistent) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids a = alloc(pool, 2);
  cache.insert(seq(8), a);
  Ids b = alloc(pool, 2);
  // A tree page at another position, a page twice, too few tokens, a page out of range.
  EXPECT_THROW(cache.insert(seq(8, 300), Ids{a[0], b[0]}), Error);
  EXPECT_THROW(cache.insert(seq(12, 300), Ids{b[0], b[1], b[0]}), Error);
  EXPECT_THROW(cache.insert(seq(7, 300), b), Error);
  EXPECT_THROW(cache.insert(seq(4, 300), Ids{16}), Error);
  cache.check_invariants();
  EXPECT_EQ(cache.cached_pages(), 2);
  EXPECT_EQ(pool.num_free(), 12);
}

TEST(RadixCache, LockedPagesAreNeverEvicted) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids a = alloc(pool, 2), b = alloc(pool, 2);
  cache.insert(seq(8), a);
  cache.insert(seq(8, 300), b);
  MatchResult m1 = cache.match_prefix(seq(9));
  MatchResult m2 = cache.match_prefix(seq(9));  // two requests share the prefix
  EXPECT_EQ(cache.evict(100), 2);
  EXPECT_EQ(cache.cached_pages(), 2);
  EXPECT_EQ(cache.match_prefix(seq(9, 300)).num_tokens, 0);
  cache.release(m1.lock);
  EXPECT_EQ(cache.evict(100), 0);  // still locked by the second request
  cache.release(m2.lock);
  EXPECT_THROW(cache.release(m2.lock), Error);
  EXPECT_EQ(cache.evict(100), 2);
  EXPECT_EQ(pool.num_free(), 16);
  cache.check_invariants();
}

TEST(RadixCache, EvictsLeastRecentlyUsedFirst) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  Ids a = seq(4, 100), b = seq(4, 200), c = seq(4, 300);
  cache.insert(a, alloc(pool, 1));
  cache.insert(b, alloc(pool, 1));
  cache.insert(c, alloc(pool, 1));
  cache.release(cache.match_prefix(concat(a, {0})).lock);  // a is now the most recent
  EXPECT_EQ(cache.evict(1), 1);
  auto cached = [&](const Ids& t) {
    MatchResult m = cache.match_prefix(concat(t, {0}));
    cache.release(m.lock);
    return m.num_tokens > 0;
  };
  EXPECT_FALSE(cached(b));
  EXPECT_EQ(cache.evict(1), 1);  // c is now older than a
  EXPECT_FALSE(cached(c));
  EXPECT_TRUE(cached(a));
}

TEST(RadixCache, EvictionTrimsLeavesAndCascadesToParents) {
  PagePool pool(16);
  RadixCache cache(pool, kPage);
  // Tree: [2 shared pages] -> {x: 2 pages, y: 1 page}.
  Ids x = concat(seq(8), seq(8, 500)), y = concat(seq(8), seq(4, 600));
  cache.insert(x, alloc(pool, 4));
  cache.insert(y, alloc(pool, 3));
  EXPECT_EQ(cache.cached_pages(), 5);
  EXPECT_EQ(cache.evict(1), 1);  // x is older: its last page goes
  cache.check_invariants();
  MatchResult mx = cache.match_prefix(concat(x, {0}));
  EXPECT_EQ(mx.num_tokens, 12);
  cache.release(mx.lock);
  EXPECT_EQ(cache.evict(2), 2);  // y (now older), then x's remaining page
  cache.check_invariants();
  EXPECT_EQ(cache.evict(1), 1);  // the shared parent became a leaf: trimmed from its end
  MatchResult left = cache.match_prefix(concat(seq(8), {0}));
  EXPECT_EQ(left.num_tokens, 4);
  cache.release(left.lock);
  cache.reset();
  EXPECT_EQ(pool.num_free(), 16);
  cache.check_invariants();
}

TEST(RadixCache, AllocPagesEvictsOnlyWhenItCanSucceed) {
  PagePool pool(4);
  RadixCache cache(pool, kPage);
  cache.insert(seq(12), alloc(pool, 3));
  MatchResult m = cache.match_prefix(seq(5));  // locks one page
  Ids out;
  EXPECT_FALSE(cache.alloc_pages(4, &out));
  EXPECT_EQ(cache.cached_pages(), 3);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(cache.alloc_pages(3, &out));
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(cache.cached_pages(), 1);
  cache.release(m.lock);
  pool.free(out);
  cache.check_invariants();
}

TEST(RadixCache, ResetNeedsNoLocksAndEmptiesTheCache) {
  PagePool pool(8);
  {
    RadixCache cache(pool, kPage);
    cache.insert(seq(12), alloc(pool, 3));
    MatchResult m = cache.match_prefix(seq(5));
    EXPECT_THROW(cache.reset(), Error);
    cache.release(m.lock);
    cache.reset();
    EXPECT_EQ(cache.cached_pages(), 0);
    EXPECT_EQ(pool.num_free(), 8);
    cache.insert(seq(8), alloc(pool, 2));
  }
  EXPECT_EQ(pool.num_free(), 8);  // the destructor returned the tree's pages
}

TEST(RadixCache, HashCollisionsNeverGiveFalseMatches) {
  PagePool pool(16);
  RadixCache cache(pool, kPage, &constant_hash);
  Ids a = alloc(pool, 2), b = alloc(pool, 2);
  cache.insert(seq(8, 100), a);
  cache.insert(seq(8, 200), b);
  MatchResult mb = cache.match_prefix(seq(9, 200));
  EXPECT_EQ(mb.pages, b);
  EXPECT_EQ(cache.match_prefix(seq(9, 300)).num_tokens, 0);
  cache.release(mb.lock);
  cache.check_invariants();
}

// Random requests over a small token alphabet (lots of sharing) on a small pool, as the engine
// would drive the cache; checks accounting, invariants and page contents after every operation.
struct StressRequest {
  Ids tokens;
  Ids table;  // page table: [0, shared) tree pages under `lock`, the rest owned
  size_t shared = 0;
  LockHandle lock;
};

// What a stress run exercised, so the test can insist the interesting paths were taken.
struct StressCounts {
  int64_t hits = 0, duplicates = 0, evicted = 0, refused = 0;
};

void run_stress(int32_t page_size, PageHashFn hash, uint32_t seed, StressCounts* counts) {
  constexpr int32_t kPoolPages = 32;  // 8 requests of up to 6 pages overflow it
  std::mt19937 rng(seed);
  auto pick = [&](int32_t lo, int32_t hi) {
    return std::uniform_int_distribution<int32_t>(lo, hi)(rng);
  };
  PagePool pool(kPoolPages);
  RadixCache cache(pool, page_size, hash);
  std::vector<Ids> content(kPoolPages);  // the token prefix each page's KV was computed for
  std::vector<StressRequest> running;

  auto check_table = [&](const Ids& tokens, std::span<const int32_t> table) {
    for (size_t k = 0; k < table.size(); ++k) {
      const size_t end = std::min(tokens.size(), (k + 1) * page_size);
      ASSERT_EQ(content[table[k]], Ids(tokens.begin(), tokens.begin() + end)) << "page " << k;
    }
  };
  auto check_all = [&] {
    cache.check_invariants();
    int64_t held = 0;
    for (const auto& r : running) {
      held += static_cast<int64_t>(r.table.size() - r.shared);
      check_table(r.tokens, r.table);
    }
    ASSERT_EQ(pool.num_free() + cache.cached_pages() + held, kPoolPages);
  };
  auto full_pages = [&](const StressRequest& r) { return r.tokens.size() / page_size; };

  for (int step = 0; step < 4000; ++step) {
    const int op = pick(0, 9);
    if (op <= 3 && running.size() < 8) {  // admit a request
      StressRequest r;
      const int32_t len = pick(1, 6 * page_size);
      for (int32_t i = 0; i < len; ++i) r.tokens.push_back(i < page_size ? pick(0, 1) : pick(0, 2));
      MatchResult m = cache.match_prefix(r.tokens);
      ASSERT_EQ(m.num_tokens, static_cast<int32_t>(m.pages.size()) * page_size);
      ASSERT_LT(m.num_tokens, len);
      check_table(r.tokens, m.pages);
      counts->hits += m.num_tokens > 0;
      r.table = m.pages;
      r.shared = m.pages.size();
      r.lock = m.lock;
      Ids own;
      if (!cache.alloc_pages(pages_for(len, page_size) - static_cast<int32_t>(r.shared), &own)) {
        cache.release(r.lock);  // not admitted
        ++counts->refused;
      } else {
        for (int32_t p : own) {
          const size_t end = std::min(r.tokens.size(), (r.table.size() + 1) * page_size);
          content[p] = Ids(r.tokens.begin(), r.tokens.begin() + end);
          r.table.push_back(p);
        }
        running.push_back(std::move(r));
      }
    } else if (op <= 6 && !running.empty()) {  // finish or abort
      const size_t i = pick(0, static_cast<int32_t>(running.size()) - 1);
      StressRequest r = std::move(running[i]);
      running.erase(running.begin() + i);
      const size_t full = op == 6 ? r.shared : full_pages(r);  // op 6: abort, no insert
      InsertResult ins = cache.insert(r.tokens, std::span(r.table).first(full));
      ASSERT_EQ(ins.pages.size(), full);
      ASSERT_GE(ins.num_cached_tokens, static_cast<int32_t>(r.shared) * page_size);
      counts->duplicates += ins.num_cached_tokens > static_cast<int32_t>(r.shared) * page_size;
      cache.release(r.lock);
      pool.free(std::span(r.table).subspan(full));
    } else if (op == 7 && !running.empty()) {  // cache a running request, keep it locked
      StressRequest& r = running[pick(0, static_cast<int32_t>(running.size()) - 1)];
      const size_t full = full_pages(r);
      InsertResult ins = cache.insert(r.tokens, std::span(r.table).first(full), /*lock=*/true);
      std::copy(ins.pages.begin(), ins.pages.end(), r.table.begin());
      cache.release(r.lock);
      r.lock = ins.lock;
      r.shared = full;
    } else if (op == 8) {
      const int64_t before = cache.evictable_pages();
      const int32_t want = pick(0, 6);
      const int32_t freed = cache.evict(want);
      ASSERT_EQ(freed, std::min<int64_t>(want, before));
      counts->evicted += freed;
    }
    check_all();
    if (::testing::Test::HasFatalFailure()) return;
  }
  for (auto& r : running) {
    cache.release(r.lock);
    pool.free(std::span(r.table).subspan(r.shared));
  }
  cache.reset();
  ASSERT_EQ(pool.num_free(), kPoolPages);
}

uint64_t weak_hash(std::span<const int32_t> page) {
  return static_cast<uint64_t>(page[0] % 2);
}

TEST(RadixCache, RandomizedStressKeepsAccountingAndContents) {
  const auto start = std::chrono::steady_clock::now();
  StressCounts counts;
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    for (int32_t page_size : {1, 2, 4}) {
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " page " << page_size);
      run_stress(page_size, &default_page_hash, seed, &counts);
      run_stress(page_size, &weak_hash, seed + 100, &counts);
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_GT(counts.hits, 1000);
  EXPECT_GT(counts.duplicates, 100);
  EXPECT_GT(counts.evicted, 100);
  EXPECT_GT(counts.refused, 10);
  std::printf("stress: %lld hits, %lld inserts with duplicates, %lld evicted, %lld refused\n",
              static_cast<long long>(counts.hits), static_cast<long long>(counts.duplicates),
              static_cast<long long>(counts.evicted), static_cast<long long>(counts.refused));
}

}  // namespace
}  // namespace wideserve::kvcache
