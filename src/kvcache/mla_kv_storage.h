// Storage of the MLA latent KV cache: per layer, one row per token slot of
// kv_lora_rank + qk_rope_head_dim floats (the compressed latent, then the roped key part).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace wideserve::kvcache {

// [layers][num_pages * page_size][row_dim] float32 on the host.
class MlaKvStorage {
 public:
  MlaKvStorage(int64_t num_layers, int64_t num_pages, int64_t page_size, int64_t row_dim);

  int64_t num_layers() const { return num_layers_; }
  int64_t num_pages() const { return num_pages_; }
  int64_t page_size() const { return page_size_; }
  int64_t row_dim() const { return row_dim_; }
  int64_t slots() const { return slots_; }
  // The whole pool, [layers][slots][row_dim] float32 (for transfer agents).
  float* data() { return data_.data(); }
  size_t bytes() const { return data_.size() * sizeof(float); }

  // Slot of token position `pos` of a sequence with page table `pages`.
  int64_t slot(std::span<const int32_t> pages, int64_t pos) const {
    return static_cast<int64_t>(pages[pos / page_size_]) * page_size_ + pos % page_size_;
  }
  float* row(int64_t layer, int64_t slot) {
    return data_.data() + (layer * slots_ + slot) * row_dim_;
  }
  const float* row(int64_t layer, int64_t slot) const {
    return data_.data() + (layer * slots_ + slot) * row_dim_;
  }
  // Copies positions [0, len) of a sequence's layer rows into out [len, row_dim].
  void gather(int64_t layer, std::span<const int32_t> pages, int64_t len, float* out) const;

 private:
  int64_t num_layers_, num_pages_, page_size_, row_dim_, slots_;
  std::vector<float> data_;
};

}  // namespace wideserve::kvcache
