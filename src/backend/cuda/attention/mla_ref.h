// CPU float64 reference of absorbed MLA attention over a paged latent cache (tests and benches).
#pragma once

#include <cstdint>
#include <vector>

namespace wideserve::cuda {

// Host copies (float) of MlaAttentionParams' arrays; out [tokens, heads, 512], lse [tokens, heads]
// (natural log). Token t attends to cache positions [0, min(token_pos[t] + 1, seq_lens[seq])).
void mla_attention_ref(const std::vector<float>& q, const std::vector<float>& kv_cache,
                       const std::vector<int32_t>& page_table, const std::vector<int32_t>& seq_lens,
                       const std::vector<int32_t>& token_seq, const std::vector<int32_t>& token_pos,
                       int64_t num_heads, int64_t max_pages_per_seq, int64_t page_size,
                       double softmax_scale, std::vector<double>& out, std::vector<double>& lse);

}  // namespace wideserve::cuda
