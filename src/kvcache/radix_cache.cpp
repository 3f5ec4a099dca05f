#include "kvcache/radix_cache.h"

#include <algorithm>
#include <unordered_set>

#include "common/check.h"
#include "kvcache/block_hash.h"

namespace wideserve::kvcache {

// One edge of the tree: a run of whole pages. The root has no pages and is never evicted.
struct RadixCache::Node {
  Node* parent = nullptr;
  std::vector<int32_t> tokens;  // pages.size() * page_size token ids
  std::vector<int32_t> pages;
  std::vector<uint64_t> block_hashes;  // chained KV block hash per page (only with an event sink)
  uint64_t first_hash = 0;             // hash of the first page's tokens: this node's key in parent
  std::unordered_multimap<uint64_t, std::unique_ptr<Node>> children;
  int64_t lock_ref = 0;      // handles locking this node or a descendant
  uint64_t last_access = 0;  // never older than any descendant's
  bool in_lru = false;
  uint64_t lru_time = 0;  // last_access when inserted into lru_
};

uint64_t default_page_hash(std::span<const int32_t> page_tokens) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ page_tokens.size();
  for (int32_t t : page_tokens) {
    h ^= static_cast<uint32_t>(t);
    // splitmix64 finalizer: cheap and mixes every bit of the token into the state.
    h += 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
  }
  return h;
}

RadixCache::RadixCache(PagePool& pool, int32_t page_size, PageHashFn page_hash)
    : pool_(pool),
      page_size_(page_size),
      page_hash_(page_hash),
      root_(std::make_unique<Node>()),
      in_tree_(pool.num_pages(), 0) {
  WS_CHECK_ARG(page_size > 0, "radix cache page size must be positive, got {}", page_size);
  WS_CHECK_ARG(page_hash != nullptr, "radix cache needs a page hash function");
}

// Pages still in the tree belong to the cache; give them back so the pool balances.
RadixCache::~RadixCache() {
  std::vector<int32_t> pages;
  for (size_t p = 0; p < in_tree_.size(); ++p) {
    if (in_tree_[p]) pages.push_back(static_cast<int32_t>(p));
  }
  pool_.free(pages);
}

std::span<const int32_t> RadixCache::page_at(std::span<const int32_t> tokens, int64_t page) const {
  return tokens.subspan(page * page_size_, page_size_);
}

RadixCache::Node* RadixCache::find_child(Node* node, std::span<const int32_t> page_tokens) const {
  auto [begin, end] = node->children.equal_range(page_hash_(page_tokens));
  for (auto it = begin; it != end; ++it) {
    const auto& child_tokens = it->second->tokens;
    if (std::equal(page_tokens.begin(), page_tokens.end(), child_tokens.begin())) {
      return it->second.get();
    }
  }
  return nullptr;
}

void RadixCache::add_child(Node* parent, std::unique_ptr<Node> child) {
  child->parent = parent;
  child->first_hash = page_hash_(page_at(child->tokens, 0));
  Node* raw = child.get();
  parent->children.emplace(child->first_hash, std::move(child));
  reindex(parent);
  reindex(raw);
}

std::unique_ptr<RadixCache::Node> RadixCache::take_child(Node* parent, Node* child) {
  auto [begin, end] = parent->children.equal_range(child->first_hash);
  for (auto it = begin; it != end; ++it) {
    if (it->second.get() == child) {
      std::unique_ptr<Node> owned = std::move(it->second);
      parent->children.erase(it);
      return owned;
    }
  }
  WS_CHECK(false, "radix node missing from its parent's children");
  return nullptr;
}

// Cuts `node` after keep_pages pages; returns the new upper node holding them. Handles that lock
// `node` stay valid: the upper node takes node's lock count, and paths to the root still pass it.
RadixCache::Node* RadixCache::split(Node* node, int64_t keep_pages) {
  WS_CHECK(keep_pages > 0 && keep_pages < static_cast<int64_t>(node->pages.size()),
           "split of a {}-page node at {}", node->pages.size(), keep_pages);
  Node* parent = node->parent;
  std::unique_ptr<Node> lower = take_child(parent, node);
  auto upper = std::make_unique<Node>();
  const int64_t keep_tokens = keep_pages * page_size_;
  upper->tokens.assign(node->tokens.begin(), node->tokens.begin() + keep_tokens);
  upper->pages.assign(node->pages.begin(), node->pages.begin() + keep_pages);
  if (sink_) {
    upper->block_hashes.assign(node->block_hashes.begin(), node->block_hashes.begin() + keep_pages);
    node->block_hashes.erase(node->block_hashes.begin(), node->block_hashes.begin() + keep_pages);
  }
  upper->lock_ref = node->lock_ref;
  upper->last_access = node->last_access;
  node->tokens.erase(node->tokens.begin(), node->tokens.begin() + keep_tokens);
  node->pages.erase(node->pages.begin(), node->pages.begin() + keep_pages);
  Node* raw_upper = upper.get();
  add_child(parent, std::move(upper));
  add_child(raw_upper, std::move(lower));
  return raw_upper;
}

void RadixCache::touch(Node* node) {
  const uint64_t now = ++clock_;
  for (Node* n = node; n != root_.get(); n = n->parent) {
    n->last_access = now;
    reindex(n);
  }
}

void RadixCache::lock_path(Node* node) {
  for (Node* n = node; n != root_.get(); n = n->parent) {
    if (n->lock_ref++ == 0) {
      evictable_pages_ -= static_cast<int64_t>(n->pages.size());
      reindex(n);
    }
  }
}

void RadixCache::unlock_path(Node* node) {
  for (Node* n = node; n != root_.get(); n = n->parent) {
    WS_CHECK(n->lock_ref > 0, "radix node unlocked more often than locked");
    if (--n->lock_ref == 0) {
      evictable_pages_ += static_cast<int64_t>(n->pages.size());
      reindex(n);
    }
  }
}

LockHandle RadixCache::new_handle(Node* node) {
  if (node == root_.get()) return {};
  lock_path(node);
  LockHandle handle{next_handle_++};
  locks_.emplace(handle.id, node);
  return handle;
}

void RadixCache::unindex(Node* node) {
  if (!node->in_lru) return;
  lru_.erase({node->lru_time, node});
  node->in_lru = false;
}

// Keeps lru_ equal to the set of unlocked leaves, keyed by their current last access.
void RadixCache::reindex(Node* node) {
  unindex(node);
  if (node == root_.get() || !node->children.empty() || node->lock_ref > 0) return;
  node->lru_time = node->last_access;
  node->in_lru = true;
  lru_.insert({node->lru_time, node});
}

MatchResult RadixCache::match_prefix(std::span<const int32_t> tokens) {
  MatchResult result;
  // At least one token stays uncached so the engine computes the last position's logits.
  const int64_t max_pages =
      tokens.empty() ? 0 : static_cast<int64_t>(tokens.size() - 1) / page_size_;
  Node* node = root_.get();
  int64_t done = 0;
  while (done < max_pages) {
    Node* child = find_child(node, page_at(tokens, done));
    if (child == nullptr) break;
    const int64_t child_pages = static_cast<int64_t>(child->pages.size());
    int64_t same = 1;  // find_child compared the first page
    while (same < child_pages && done + same < max_pages &&
           std::ranges::equal(page_at(child->tokens, same), page_at(tokens, done + same))) {
      ++same;
    }
    if (same < child_pages) child = split(child, same);
    result.pages.insert(result.pages.end(), child->pages.begin(), child->pages.end());
    done += same;
    node = child;
    if (same < child_pages) break;
  }
  result.num_tokens = static_cast<int32_t>(done * page_size_);
  if (node != root_.get()) {
    result.lock = new_handle(node);
    touch(node);
  }
  return result;
}

InsertResult RadixCache::insert(std::span<const int32_t> tokens, std::span<const int32_t> pages,
                                bool lock) {
  const int64_t num_pages = static_cast<int64_t>(pages.size());
  WS_CHECK_ARG(static_cast<int64_t>(tokens.size()) >= num_pages * page_size_,
               "radix insert of {} pages needs {} tokens, got {}", num_pages,
               num_pages * page_size_, tokens.size());
  for (int32_t p : pages) {
    WS_CHECK_ARG(p >= 0 && p < pool_.num_pages(), "radix insert of page {} outside [0, {})", p,
                 pool_.num_pages());
  }
  InsertResult result;
  result.pages.reserve(pages.size());

  // Walk the cached part. Splitting keeps the tree valid, so a bad argument found here leaves a
  // consistent cache; nothing is freed or adopted until every page has been checked.
  Node* node = root_.get();
  int64_t done = 0;
  std::vector<int32_t> duplicates;
  while (done < num_pages) {
    Node* child = find_child(node, page_at(tokens, done));
    if (child == nullptr) break;
    const int64_t child_pages = static_cast<int64_t>(child->pages.size());
    int64_t same = 1;
    while (same < child_pages && done + same < num_pages &&
           std::ranges::equal(page_at(child->tokens, same), page_at(tokens, done + same))) {
      ++same;
    }
    if (same < child_pages) child = split(child, same);
    for (int64_t i = 0; i < same; ++i) {
      const int32_t mine = pages[done + i];
      const int32_t tree = child->pages[i];
      if (mine != tree) {
        // Same content under another id: the caller's copy is redundant.
        WS_CHECK_ARG(!in_tree_[mine], "radix insert passes tree page {} at the wrong position",
                     mine);
        duplicates.push_back(mine);
      }
      result.pages.push_back(tree);
    }
    done += same;
    node = child;
    if (same < child_pages) break;
  }
  result.num_cached_tokens = static_cast<int32_t>(done * page_size_);

  std::span<const int32_t> fresh = pages.subspan(done);
  std::unordered_set<int32_t> seen(duplicates.begin(), duplicates.end());
  for (int32_t p : fresh) {
    WS_CHECK_ARG(!in_tree_[p], "radix insert adopts page {} that the tree already holds", p);
    WS_CHECK_ARG(seen.insert(p).second, "radix insert passes page {} twice", p);
  }
  WS_CHECK_ARG(seen.size() == duplicates.size() + fresh.size(),
               "radix insert passes a duplicate page id twice");

  if (!fresh.empty()) {
    auto leaf = std::make_unique<Node>();
    leaf->tokens.assign(tokens.begin() + done * page_size_,
                        tokens.begin() + num_pages * page_size_);
    leaf->pages.assign(fresh.begin(), fresh.end());
    for (int32_t p : fresh) in_tree_[p] = 1;
    cached_pages_ += static_cast<int64_t>(fresh.size());
    evictable_pages_ += static_cast<int64_t>(fresh.size());
    result.pages.insert(result.pages.end(), fresh.begin(), fresh.end());
    Node* raw = leaf.get();
    add_child(node, std::move(leaf));
    if (sink_) report_stored(node, raw);
    node = raw;
  }
  pool_.free(duplicates);
  if (lock) result.lock = new_handle(node);
  if (node != root_.get()) touch(node);
  return result;
}

void RadixCache::release(LockHandle handle) {
  if (handle.empty()) return;
  auto it = locks_.find(handle.id);
  WS_CHECK_ARG(it != locks_.end(), "radix lock {} released twice or never issued", handle.id);
  unlock_path(it->second);
  locks_.erase(it);
}

int32_t RadixCache::evict(int32_t num_pages) {
  WS_CHECK_ARG(num_pages >= 0, "evict of {} pages", num_pages);
  int32_t freed = 0;
  std::vector<int32_t> victims;
  while (freed < num_pages && !lru_.empty()) {
    Node* leaf = lru_.begin()->second;
    // Trim from the leaf's end so the remaining pages still form a valid prefix.
    const int32_t take = std::min(num_pages - freed, static_cast<int32_t>(leaf->pages.size()));
    victims.assign(leaf->pages.end() - take, leaf->pages.end());
    leaf->pages.resize(leaf->pages.size() - take);
    if (sink_) {
      if (!clearing_) sink_->on_removed(std::span<const uint64_t>(leaf->block_hashes).last(take));
      leaf->block_hashes.resize(leaf->pages.size());
    }
    leaf->tokens.resize(leaf->pages.size() * page_size_);
    for (int32_t p : victims) in_tree_[p] = 0;
    pool_.free(victims);
    freed += take;
    cached_pages_ -= take;
    evictable_pages_ -= take;
    if (leaf->pages.empty()) {
      unindex(leaf);
      Node* parent = leaf->parent;
      take_child(parent, leaf).reset();
      reindex(parent);  // may become an evictable leaf: cascades
    }
  }
  return freed;
}

bool RadixCache::alloc_pages(int32_t n, std::vector<int32_t>* out) {
  WS_CHECK_ARG(n >= 0, "alloc of {} pages", n);
  const int64_t missing = static_cast<int64_t>(n) - pool_.num_free();
  if (missing > evictable_pages_) return false;
  if (missing > 0) WS_CHECK(evict(static_cast<int32_t>(missing)) == missing, "short eviction");
  WS_CHECK(pool_.alloc(n, out), "pool alloc failed after eviction");
  return true;
}

void RadixCache::reset() {
  WS_CHECK_ARG(locks_.empty(), "radix cache reset with {} locks outstanding", locks_.size());
  clearing_ = true;
  evict(static_cast<int32_t>(std::min<int64_t>(cached_pages_, INT32_MAX)));
  clearing_ = false;
  WS_CHECK(cached_pages_ == 0 && root_->children.empty(), "radix cache not empty after reset");
  if (sink_) sink_->on_cleared();
}

void RadixCache::set_event_sink(std::shared_ptr<KvEventSink> sink) {
  WS_CHECK_ARG(cached_pages_ == 0, "radix cache event sink set while {} pages are cached",
               cached_pages_);
  sink_ = std::move(sink);
}

// Hashes a new leaf's pages, chained to its parent's last block, and reports them as stored.
void RadixCache::report_stored(Node* parent, Node* leaf) {
  std::optional<uint64_t> prev;
  if (parent != root_.get()) prev = parent->block_hashes.back();
  const std::optional<uint64_t> first_parent = prev;
  std::vector<KvBlockHash> blocks;
  blocks.reserve(leaf->pages.size());
  leaf->block_hashes.clear();
  for (size_t i = 0; i < leaf->pages.size(); ++i) {
    const uint64_t local = local_block_hash(page_at(leaf->tokens, static_cast<int64_t>(i)));
    const uint64_t h = prev ? chain_block_hash(*prev, local) : local;
    blocks.push_back({h, local});
    leaf->block_hashes.push_back(h);
    prev = h;
  }
  sink_->on_stored(first_parent, blocks);
}

void RadixCache::check_invariants() const {
  std::unordered_map<const Node*, int64_t> handles_at;
  for (const auto& [id, node] : locks_) ++handles_at[node];
  std::vector<char> seen(in_tree_.size(), 0);
  int64_t pages = 0, evictable = 0;
  size_t leaves = 0;
  std::vector<const Node*> stack = {root_.get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    const bool is_root = node == root_.get();
    int64_t child_locks = 0;
    for (const auto& [hash, child] : node->children) {
      WS_CHECK(child->parent == node, "radix child has the wrong parent");
      WS_CHECK(!child->pages.empty(), "radix node without pages");
      WS_CHECK(hash == child->first_hash && hash == page_hash_(page_at(child->tokens, 0)),
               "radix child keyed under a stale hash");
      WS_CHECK(child->last_access <= node->last_access || is_root,
               "radix child accessed after its parent");
      auto [same_begin, same_end] = node->children.equal_range(hash);
      for (auto it = same_begin; it != same_end; ++it) {
        WS_CHECK(it->second == child ||
                     !std::ranges::equal(page_at(it->second->tokens, 0), page_at(child->tokens, 0)),
                 "two radix siblings start with the same page");
      }
      child_locks += child->lock_ref;
      stack.push_back(child.get());
    }
    if (is_root) continue;
    WS_CHECK(!sink_ || node->block_hashes.size() == node->pages.size(),
             "radix node holds {} block hashes for {} pages", node->block_hashes.size(),
             node->pages.size());
    WS_CHECK(node->tokens.size() == node->pages.size() * page_size_,
             "radix node holds {} tokens for {} pages", node->tokens.size(), node->pages.size());
    auto handles = handles_at.find(node);
    const int64_t own = handles == handles_at.end() ? 0 : handles->second;
    WS_CHECK(node->lock_ref == child_locks + own, "radix lock count {} != {} + {}", node->lock_ref,
             child_locks, own);
    for (int32_t p : node->pages) {
      WS_CHECK(p >= 0 && p < static_cast<int32_t>(seen.size()), "radix page {} out of range", p);
      WS_CHECK(!seen[p], "radix page {} stored twice", p);
      WS_CHECK(in_tree_[p], "radix page {} not marked as cached", p);
      seen[p] = 1;
    }
    pages += static_cast<int64_t>(node->pages.size());
    if (node->lock_ref == 0) evictable += static_cast<int64_t>(node->pages.size());
    const bool should_index = node->children.empty() && node->lock_ref == 0;
    WS_CHECK(node->in_lru == should_index, "radix LRU membership wrong");
    if (should_index) {
      ++leaves;
      WS_CHECK(node->lru_time == node->last_access &&
                   lru_.count({node->lru_time, const_cast<Node*>(node)}),
               "radix LRU entry stale");
    }
  }
  WS_CHECK(leaves == lru_.size(), "radix LRU has {} entries for {} leaves", lru_.size(), leaves);
  WS_CHECK(pages == cached_pages_, "radix counts {} pages, holds {}", cached_pages_, pages);
  WS_CHECK(evictable == evictable_pages_, "radix counts {} evictable pages, has {}",
           evictable_pages_, evictable);
  WS_CHECK(std::count(in_tree_.begin(), in_tree_.end(), 1) == pages, "radix page marks drift");
  WS_CHECK(pages <= pool_.num_pages() - pool_.num_free(), "radix holds {} pages, pool lends {}",
           pages, pool_.num_pages() - pool_.num_free());
}

}  // namespace wideserve::kvcache
