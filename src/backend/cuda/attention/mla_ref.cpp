#include "backend/cuda/attention/mla_ref.h"

#include <algorithm>
#include <cmath>

#include "backend/cuda/attention/mla.h"

namespace wideserve::cuda {

void mla_attention_ref(const std::vector<float>& q, const std::vector<float>& kv_cache,
                       const std::vector<int32_t>& page_table, const std::vector<int32_t>& seq_lens,
                       const std::vector<int32_t>& token_seq, const std::vector<int32_t>& token_pos,
                       int64_t num_heads, int64_t max_pages_per_seq, int64_t page_size,
                       double softmax_scale, std::vector<double>& out, std::vector<double>& lse) {
  const int64_t row = kMlaRowDim, lat = kMlaLatentDim, tokens = token_seq.size();
  out.assign(tokens * num_heads * lat, 0.0);
  lse.assign(tokens * num_heads, -INFINITY);
  std::vector<double> s;
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t seq = token_seq[t];
    const int64_t len = std::min<int64_t>(token_pos[t] + 1, seq_lens[seq]);
    std::vector<const float*> rows(len);
    for (int64_t pos = 0; pos < len; ++pos) {
      int64_t page = page_table[seq * max_pages_per_seq + pos / page_size];
      rows[pos] = &kv_cache[(page * page_size + pos % page_size) * row];
    }
    s.resize(len);
    for (int64_t h = 0; h < num_heads; ++h) {
      const float* qh = &q[(t * num_heads + h) * row];
      double mx = -INFINITY;
      for (int64_t pos = 0; pos < len; ++pos) {
        double acc = 0;
        for (int64_t d = 0; d < row; ++d) acc += static_cast<double>(qh[d]) * rows[pos][d];
        s[pos] = acc * softmax_scale;
        mx = std::max(mx, s[pos]);
      }
      double sum = 0;
      for (int64_t pos = 0; pos < len; ++pos) sum += (s[pos] = std::exp(s[pos] - mx));
      double* o = &out[(t * num_heads + h) * lat];
      for (int64_t pos = 0; pos < len; ++pos)
        for (int64_t d = 0; d < lat; ++d) o[d] += s[pos] / sum * rows[pos][d];
      if (len > 0) lse[t * num_heads + h] = mx + std::log(sum);
    }
  }
}

}  // namespace wideserve::cuda
