// Radix prefix cache: a tree of token sequences at page granularity, so requests sharing a
// prompt prefix reuse its KV pages. Unreferenced pages go back to the pool in LRU order.
//
// Ownership rules:
// - Every page stored in the tree is owned by the cache; it returns to the PagePool only through
//   evict() or reset().
// - match_prefix() hands out tree pages locked under a handle; the caller may read them but never
//   frees them, and must release(handle) once it no longer needs them.
// - insert() takes ownership of every page passed: pages new to the tree are adopted, pages whose
//   content is already cached under another id are freed to the pool, pages that are already the
//   tree's own (e.g. the caller's matched prefix) are kept. insert() does not release any lock.
//   Afterwards the caller owns none of the passed pages: a request that keeps running must switch
//   its page table to InsertResult::pages (and hold InsertResult::lock) before using them again.
// - Only pages whose KV is written for all page_size tokens may be inserted.
// - The pool must outlive the cache; destroying the cache returns its pages to the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kvcache/kv_events.h"
#include "kvcache/page_pool.h"

namespace wideserve::kvcache {

// Keeps tree pages from eviction until release(); id 0 = nothing locked.
struct LockHandle {
  uint64_t id = 0;
  bool empty() const { return id == 0; }
};

// Cached prefix found by match_prefix().
struct MatchResult {
  std::vector<int32_t> pages;  // tree pages of positions [0, num_tokens), locked by `lock`
  int32_t num_tokens = 0;      // multiple of page_size, < tokens.size() when tokens is non-empty
  LockHandle lock;
};

// Outcome of insert().
struct InsertResult {
  int32_t num_cached_tokens = 0;  // leading tokens that were already in the tree before the insert
  std::vector<int32_t> pages;     // the tree's pages now holding the inserted tokens
  LockHandle lock;                // set only when insert() was asked to lock
};

// Hash of one page of token ids, used to key a node's children (content is always compared too).
using PageHashFn = uint64_t (*)(std::span<const int32_t> page_tokens);
uint64_t default_page_hash(std::span<const int32_t> page_tokens);

// Page-granular radix tree over a PagePool. Not thread-safe: owned by one scheduler.
class RadixCache {
 public:
  // `page_hash` is replaceable so tests can force hash collisions.
  RadixCache(PagePool& pool, int32_t page_size, PageHashFn page_hash = &default_page_hash);
  ~RadixCache();
  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  // Longest cached whole-page prefix of `tokens` leaving at least one token uncached; locks it.
  MatchResult match_prefix(std::span<const int32_t> tokens);
  // Gives the tree the first pages.size() full pages of `tokens` (see ownership rules above).
  InsertResult insert(std::span<const int32_t> tokens, std::span<const int32_t> pages,
                      bool lock = false);
  // Unlocks what a match_prefix()/insert() handle locked; an empty handle is a no-op.
  void release(LockHandle handle);

  // Frees up to num_pages unlocked pages, least recently used leaves first; returns pages freed.
  int32_t evict(int32_t num_pages);
  // Allocates n pages from the pool, evicting first if needed; false (nothing done) if impossible.
  bool alloc_pages(int32_t n, std::vector<int32_t>* out);
  // Frees every cached page; requires that no handle is outstanding.
  void reset();
  // Reports stored/removed blocks (hashes as in block_hash.h) to `sink` from now on; only while
  // the cache is empty (the sink must learn every block). Null stops reporting.
  void set_event_sink(std::shared_ptr<KvEventSink> sink);

  int32_t page_size() const { return page_size_; }
  int64_t cached_pages() const { return cached_pages_; }
  int64_t evictable_pages() const { return evictable_pages_; }
  int64_t num_locks() const { return static_cast<int64_t>(locks_.size()); }
  // Full structural check (throws on violation); O(tree size), for tests and debugging.
  void check_invariants() const;

 private:
  struct Node;
  using LruKey = std::pair<uint64_t, Node*>;

  std::span<const int32_t> page_at(std::span<const int32_t> tokens, int64_t page) const;
  Node* find_child(Node* node, std::span<const int32_t> page_tokens) const;
  void add_child(Node* parent, std::unique_ptr<Node> child);
  std::unique_ptr<Node> take_child(Node* parent, Node* child);
  Node* split(Node* node, int64_t keep_pages);
  void touch(Node* node);
  void lock_path(Node* node);
  void unlock_path(Node* node);
  LockHandle new_handle(Node* node);
  void reindex(Node* node);
  void unindex(Node* node);
  void report_stored(Node* parent, Node* leaf);

  PagePool& pool_;
  int32_t page_size_;
  PageHashFn page_hash_;
  std::unique_ptr<Node> root_;
  std::vector<char> in_tree_;  // per pool page: stored in the tree
  int64_t cached_pages_ = 0;
  int64_t evictable_pages_ = 0;
  uint64_t clock_ = 0;                         // logical time of the last access
  uint64_t next_handle_ = 1;                   // 0 is the empty handle
  std::unordered_map<uint64_t, Node*> locks_;  // handle id -> deepest locked node
  std::set<LruKey> lru_;                       // unlocked leaves by last access
  std::shared_ptr<KvEventSink> sink_;          // null: no KV events
  bool clearing_ = false;                      // reset(): one Cleared instead of Removed events
};

}  // namespace wideserve::kvcache
