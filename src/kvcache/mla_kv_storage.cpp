#include "kvcache/mla_kv_storage.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"

namespace wideserve::kvcache {

MlaKvStorage::MlaKvStorage(int64_t num_layers, int64_t num_pages, int64_t page_size,
                           int64_t row_dim)
    : num_layers_(num_layers),
      num_pages_(num_pages),
      page_size_(page_size),
      row_dim_(row_dim),
      slots_(num_pages * page_size) {
  WS_CHECK_ARG(num_layers > 0 && num_pages > 0 && page_size > 0 && row_dim > 0,
               "bad KV storage shape: layers {} pages {} page_size {} row {}", num_layers,
               num_pages, page_size, row_dim);
  data_.assign(static_cast<size_t>(num_layers * slots_ * row_dim), 0.0f);
}

void MlaKvStorage::gather(int64_t layer, std::span<const int32_t> pages, int64_t len,
                          float* out) const {
  WS_CHECK(len <= static_cast<int64_t>(pages.size()) * page_size_,
           "gather of {} tokens from {} pages", len, pages.size());
  // Whole pages are contiguous: copy them in runs.
  for (int64_t pos = 0; pos < len; pos += page_size_) {
    int64_t n = std::min(page_size_, len - pos);
    std::memcpy(out + pos * row_dim_, row(layer, slot(pages, pos)), n * row_dim_ * sizeof(float));
  }
}

}  // namespace wideserve::kvcache
