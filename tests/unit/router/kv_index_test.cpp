// KvIndex: per-rank block sets fed by events; overlap; gaps, stale events and resync.
#include "router/kv_index.h"

#include <gtest/gtest.h>

#include <numeric>

#include "kvcache/block_hash.h"

namespace wideserve::router {
namespace {

using runtime::KvEvent;
using runtime::KvEventKind;

std::vector<int32_t> seq(int32_t start, int32_t n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

KvEvent stored(uint64_t id, std::optional<uint64_t> parent, std::span<const uint64_t> hashes) {
  KvEvent e;
  e.event_id = id;
  e.kind = KvEventKind::kStored;
  e.parent_hash = parent;
  for (uint64_t h : hashes) e.blocks.push_back({h, 0});
  return e;
}

KvEvent removed(uint64_t id, std::vector<uint64_t> hashes) {
  KvEvent e;
  e.event_id = id;
  e.kind = KvEventKind::kRemoved;
  e.removed = std::move(hashes);
  return e;
}

KvEvent cleared(uint64_t id) {
  KvEvent e;
  e.event_id = id;
  e.kind = KvEventKind::kCleared;
  return e;
}

const WorkerRank kA{"a", 0}, kB{"b", 0}, kA1{"a", 1};

TEST(KvIndex, InsertRemoveClearOverlapPerWorker) {
  KvIndex idx;
  idx.reset(kA, {});
  idx.reset(kB, {});
  const auto sys = seq(0, 64);  // 4 blocks of 16: a shared system prompt
  auto p1 = sys, p2 = sys;
  for (int32_t x : seq(1000, 32)) p1.push_back(x);
  for (int32_t x : seq(2000, 32)) p2.push_back(x);
  const auto h1 = kvcache::block_hashes(p1, 16), h2 = kvcache::block_hashes(p2, 16);
  ASSERT_EQ(h1.size(), 6u);

  // a caches all of p1; b caches the system prompt, then p2's tail under it.
  EXPECT_EQ(idx.apply(kA, stored(1, std::nullopt, h1)), ApplyResult::kApplied);
  EXPECT_EQ(idx.apply(kB, stored(1, std::nullopt, std::span(h2).first(4))), ApplyResult::kApplied);
  EXPECT_EQ(idx.apply(kB, stored(2, h2[3], std::span(h2).subspan(4))), ApplyResult::kApplied);
  EXPECT_EQ(idx.num_blocks(kA), 6);
  EXPECT_EQ(idx.num_blocks(kB), 6);

  auto ov = idx.overlap(h1);
  EXPECT_EQ(ov[kA], 6);
  EXPECT_EQ(ov[kB], 4);  // only the shared system prompt
  EXPECT_EQ(idx.overlap(kB, h2), 6);
  EXPECT_EQ(idx.overlap(WorkerRank{"nobody", 0}, h2), 0);

  // Removing a middle block cuts the prefix there.
  EXPECT_EQ(idx.apply(kA, removed(2, {h1[2]})), ApplyResult::kApplied);
  EXPECT_EQ(idx.overlap(kA, h1), 2);
  EXPECT_EQ(idx.num_blocks(kA), 5);
  // Removing unknown hashes is harmless.
  EXPECT_EQ(idx.apply(kA, removed(3, {12345})), ApplyResult::kApplied);
  EXPECT_EQ(idx.apply(kA, cleared(4)), ApplyResult::kApplied);
  EXPECT_EQ(idx.num_blocks(kA), 0);
  EXPECT_EQ(idx.overlap(h1)[kA], 0);
  EXPECT_EQ(idx.overlap(h1)[kB], 4);  // b untouched

  // Ranks of one worker are separate; removing the worker drops them all.
  idx.reset(kA1, runtime::KvState{7, 1, {h1[0]}});
  EXPECT_EQ(idx.overlap(kA1, h1), 1);
  EXPECT_EQ(idx.last_event_id(kA1), 7u);
  idx.remove_worker("a");
  EXPECT_FALSE(idx.known(kA));
  EXPECT_FALSE(idx.known(kA1));
  EXPECT_TRUE(idx.known(kB));
  EXPECT_EQ(idx.ranks().size(), 1u);
}

TEST(KvIndex, GapsStaleEventsAndResync) {
  KvIndex idx;
  const auto h = kvcache::block_hashes(seq(0, 64), 16);
  // Never synchronised: everything is a gap.
  EXPECT_EQ(idx.apply(kA, stored(1, std::nullopt, h)), ApplyResult::kGap);
  EXPECT_FALSE(idx.known(kA));

  idx.reset(kA, runtime::KvState{10, 0, {h[0]}});
  EXPECT_EQ(idx.apply(kA, stored(9, std::nullopt, h)), ApplyResult::kStale);
  EXPECT_EQ(idx.apply(kA, stored(10, std::nullopt, h)), ApplyResult::kStale);
  EXPECT_EQ(idx.num_blocks(kA), 1);
  // 12 after 10: event 11 was lost.
  EXPECT_EQ(idx.apply(kA, stored(12, h[0], std::span(h).subspan(1))), ApplyResult::kGap);
  EXPECT_EQ(idx.num_blocks(kA), 1);
  EXPECT_EQ(idx.last_event_id(kA), 10u);
  // In order, but the parent is unknown: a Stored event was lost without an id gap (e.g. the
  // state answer raced it): also a gap.
  EXPECT_EQ(idx.apply(kA, stored(11, h[2], std::span(h).subspan(3))), ApplyResult::kGap);
  EXPECT_EQ(idx.num_blocks(kA), 1);
  // Resync: the worker's full state replaces ours; later events continue from its id.
  idx.reset(kA, runtime::KvState{12, 0, {h[0], h[1], h[2]}});
  EXPECT_EQ(idx.overlap(kA, h), 3);
  EXPECT_EQ(idx.apply(kA, stored(13, h[2], std::span(h).subspan(3))), ApplyResult::kApplied);
  EXPECT_EQ(idx.overlap(kA, h), 4);
  EXPECT_EQ(idx.last_event_id(kA), 13u);
}

}  // namespace
}  // namespace wideserve::router
