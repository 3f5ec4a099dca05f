// Page allocator for the paged KV cache: a free list of fixed-size pages, all-or-nothing
// allocation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace wideserve::kvcache {

// Hands out page indices in [0, num_pages). Not thread-safe: owned by one scheduler.
class PagePool {
 public:
  explicit PagePool(int32_t num_pages);

  // Appends n free pages to *out and returns true, or returns false and changes nothing.
  bool alloc(int32_t n, std::vector<int32_t>* out);
  // Returns pages to the pool; a page freed twice or out of range is a bug (throws).
  void free(std::span<const int32_t> pages);

  int32_t num_pages() const { return static_cast<int32_t>(in_use_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }

 private:
  std::vector<int32_t> free_;
  std::vector<char> in_use_;
};

// Pages needed to hold `tokens` tokens.
inline int32_t pages_for(int64_t tokens, int64_t page_size) {
  return static_cast<int32_t>((tokens + page_size - 1) / page_size);
}

}  // namespace wideserve::kvcache
