#include "kvcache/page_pool.h"

#include "common/check.h"

namespace wideserve::kvcache {

PagePool::PagePool(int32_t num_pages) : in_use_(num_pages, 0) {
  WS_CHECK_ARG(num_pages > 0, "KV page pool needs at least one page, got {}", num_pages);
  free_.reserve(num_pages);
  // Low indices are handed out first: pop_back from a descending list.
  for (int32_t p = num_pages - 1; p >= 0; --p) free_.push_back(p);
}

bool PagePool::alloc(int32_t n, std::vector<int32_t>* out) {
  WS_CHECK(n >= 0, "alloc of {} pages", n);
  if (n > num_free()) return false;
  for (int32_t i = 0; i < n; ++i) {
    int32_t p = free_.back();
    free_.pop_back();
    in_use_[p] = 1;
    out->push_back(p);
  }
  return true;
}

void PagePool::free(std::span<const int32_t> pages) {
  for (int32_t p : pages) {
    WS_CHECK(p >= 0 && p < num_pages(), "free of page {} outside [0, {})", p, num_pages());
    WS_CHECK(in_use_[p], "page {} freed twice", p);
    in_use_[p] = 0;
    free_.push_back(p);
  }
}

}  // namespace wideserve::kvcache
