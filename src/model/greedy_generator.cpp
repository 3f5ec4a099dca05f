#include "model/greedy_generator.h"

#include <algorithm>

#include "common/check.h"
#include "kvcache/page_pool.h"

namespace wideserve::model {

int32_t argmax(std::span<const float> v) {
  WS_CHECK(!v.empty(), "argmax of nothing");
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<int32_t> greedy_generate(const DeepseekModel& model, std::span<const int32_t> prompt,
                                     int64_t max_new_tokens, bool stop_at_eos,
                                     std::vector<std::vector<float>>* step_logits,
                                     const ForwardOptions& opts) {
  const auto& c = model.config();
  WS_CHECK_ARG(!prompt.empty(), "empty prompt");
  const int64_t page_size = 64;
  const int64_t total = static_cast<int64_t>(prompt.size()) + max_new_tokens;
  kvcache::PagePool pool(kvcache::pages_for(total, page_size));
  kvcache::MlaKvStorage kv(c.num_hidden_layers, pool.num_pages(), page_size, c.kv_cache_dim());
  std::vector<int32_t> pages;
  WS_CHECK(pool.alloc(pool.num_pages(), &pages), "page allocation");
  std::vector<int32_t> out;
  std::vector<float> logits;
  SequenceInput s{prompt, 0, pages, false};
  model.forward({&s, 1}, kv, &logits, opts);
  int64_t pos = static_cast<int64_t>(prompt.size());
  while (static_cast<int64_t>(out.size()) < max_new_tokens) {
    int32_t t = argmax(logits);
    if (step_logits) step_logits->push_back(logits);
    out.push_back(t);
    if (stop_at_eos &&
        std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), t) != c.eos_token_ids.end())
      break;
    if (static_cast<int64_t>(out.size()) == max_new_tokens) break;
    SequenceInput d{std::span<const int32_t>(&out.back(), 1), pos, pages, false};
    model.forward({&d, 1}, kv, &logits, opts);
    ++pos;
  }
  return out;
}

}  // namespace wideserve::model
