#include "model/vocab_parallel_head.h"

#include <cstring>
#include <span>
#include <vector>

#include "backend/cpu/gemm.h"
#include "common/check.h"

namespace wideserve::model {

std::pair<int64_t, int64_t> vocab_slice(int64_t vocab, int ranks, int rank) {
  WS_CHECK_ARG(ranks > 0 && rank >= 0 && rank < ranks, "rank {} of {}", rank, ranks);
  return {vocab * rank / ranks, vocab * (rank + 1) / ranks};
}

void vocab_parallel_head(dist::ProcessGroup& pg, const float* lm_head, int64_t vocab,
                         int64_t hidden, const float* x, int64_t m, float* logits) {
  const int n = pg.size(), me = pg.rank();
  // Every rank's rows, in rank order.
  const auto rows = dist::all_gather_v(
      pg, std::span<const char>(reinterpret_cast<const char*>(x), m * hidden * sizeof(float)));
  std::vector<int64_t> count(n), first(n + 1, 0);
  for (int r = 0; r < n; ++r) {
    WS_CHECK(rows[r].size() % (hidden * sizeof(float)) == 0, "rank {} sent a partial row", r);
    count[r] = static_cast<int64_t>(rows[r].size() / (hidden * sizeof(float)));
    first[r + 1] = first[r] + count[r];
  }
  const int64_t total = first[n];
  std::vector<float> all(total * hidden);
  for (int r = 0; r < n; ++r)
    if (!rows[r].empty()) std::memcpy(&all[first[r] * hidden], rows[r].data(), rows[r].size());
  // This rank's vocabulary slice of everybody's logits: [total, v1 - v0].
  const auto [v0, v1] = vocab_slice(vocab, n, me);
  const int64_t width = v1 - v0;
  std::vector<float> part(total * width);
  if (total > 0 && width > 0)
    cpu::linear(all.data(), lm_head + v0 * hidden, part.data(), total, width, hidden);
  // Rows of rank r are contiguous in `part`: send them back to r.
  std::vector<std::vector<char>> out(n);
  for (int r = 0; r < n; ++r) {
    const char* b = reinterpret_cast<const char*>(part.data() + first[r] * width);
    out[r].assign(b, b + count[r] * width * sizeof(float));
  }
  const auto back = dist::exchange_blobs(pg, out);
  // From rank r: my m rows of r's slice.
  for (int r = 0; r < n; ++r) {
    const auto [s0, s1] = vocab_slice(vocab, n, r);
    const int64_t w = s1 - s0;
    WS_CHECK(back[r].size() == static_cast<size_t>(m * w) * sizeof(float),
             "rank {} returned {} bytes of logits, expected {}", r, back[r].size(),
             m * w * sizeof(float));
    const float* src = reinterpret_cast<const float*>(back[r].data());
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(logits + i * vocab + s0, src + i * w, w * sizeof(float));
  }
}

}  // namespace wideserve::model
