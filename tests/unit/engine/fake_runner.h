// A fast stand-in model for scheduler tests: it stores each computed token in its page slot and
// derives logits from everything a row can see through its page table, so a wrong page table,
// an overwritten shared page or a skipped chunk changes the output.
#pragma once

#include <cstdint>
#include <vector>

#include "common/check.h"
#include "engine/model_runner.h"

namespace wideserve::engine::testing {

class FakeRunner : public ModelRunner {
 public:
  FakeRunner(int64_t vocab, int64_t num_pages, int64_t page_size)
      : vocab_(vocab),
        pages_(num_pages),
        page_size_(page_size),
        slots_(num_pages * page_size, -1) {}
  int64_t vocab_size() const override { return vocab_; }
  int64_t num_pages() const override { return pages_; }
  int64_t page_size() const override { return page_size_; }
  int64_t max_context() const override { return 1 << 20; }
  std::vector<int32_t> eos_token_ids() const override { return {0}; }
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) override {
    logits->assign(seqs.size() * vocab_, 0.0f);
    for (size_t s = 0; s < seqs.size(); ++s) {
      const auto& q = seqs[s];
      for (size_t i = 0; i < q.tokens.size(); ++i)
        slots_.at(slot(q, q.start_pos + i)) = q.tokens[i];
      const int64_t last = q.start_pos + static_cast<int64_t>(q.tokens.size()) - 1;
      uint64_t h = 1469598103934665603ull;
      for (int64_t p = 0; p <= last; ++p) {
        int32_t t = slots_.at(slot(q, p));
        WS_CHECK(t >= 0, "fake runner: position {} read before it was written", p);
        h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
      }
      float* row = logits->data() + s * vocab_;
      for (int64_t v = 0; v < vocab_; ++v) {
        uint64_t x = h ^ (static_cast<uint64_t>(v) * 0x9e3779b97f4a7c15ull);
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 32;
        row[v] = static_cast<float>(x % 10007) / 1000.0f;
      }
      ++calls_rows_;
    }
  }
  int64_t rows() const { return calls_rows_; }
  // The token slots are the "KV": one int32 row per slot, so a transferred page carries tokens.
  KvBufferInfo kv_buffer() override {
    return {slots_.data(),
            slots_.size() * sizeof(int32_t),
            1,
            static_cast<int64_t>(slots_.size()),
            1,
            4,
            page_size_,
            "i32"};
  }

 private:
  int64_t slot(const model::SequenceInput& q, int64_t pos) const {
    WS_CHECK(pos / page_size_ < static_cast<int64_t>(q.pages.size()),
             "position {} past the page table", pos);
    return static_cast<int64_t>(q.pages[pos / page_size_]) * page_size_ + pos % page_size_;
  }
  int64_t vocab_, pages_, page_size_;
  std::vector<int32_t> slots_;
  int64_t calls_rows_ = 0;
};

}  // namespace wideserve::engine::testing
