// Internal to the MLA decode launchers (v4, v5, v6): the argument checks they share.
#pragma once

#include <cstdint>
#include <string>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/attention/mla_plan.h"
#include "backend/cuda/common/cuda_check.h"

namespace wideserve::cuda {

// Shapes, pointers and 16-byte alignment of q and kv_cache (both kernels copy 16-byte pieces);
// errors are prefixed with `kernel`. Returns false when there is no token to decode.
inline bool mla_decode_check(const MlaAttentionParams& p, const std::string& kernel) {
  WS_CUDA_REQUIRE(p.num_tokens >= 0 && p.num_seqs > 0 && p.num_heads > 0 && p.num_heads <= 4096,
                  "mla " + kernel + ": need num_seqs > 0, 0 < num_heads <= 4096 (num_tokens " +
                      std::to_string(p.num_tokens) + ")");
  WS_CUDA_REQUIRE(
      p.page_size > 0 && p.max_pages_per_seq > 0 &&
          p.max_pages_per_seq * p.page_size < (int64_t{1} << 31),
      "mla " + kernel + ": page_size, max_pages_per_seq positive, capacity < 2^31 positions");
  WS_CUDA_REQUIRE(
      p.q && p.kv_cache && p.page_table && p.seq_lens && p.token_seq && p.token_pos && p.out,
      "mla " + kernel + ": null input/output pointer");
  WS_CUDA_REQUIRE(reinterpret_cast<uintptr_t>(p.kv_cache) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.q) % 16 == 0,
                  "mla " + kernel + ": q and kv_cache must be 16-byte aligned");
  if (p.num_tokens == 0) return false;
  WS_CUDA_REQUIRE(p.num_tokens < 65536, "mla " + kernel +
                                            ": at most 65535 decode tokens per launch, got " +
                                            std::to_string(p.num_tokens));
  return true;
}

// The wgmma kernels' (v5, v6) split count for p (mla_wgmma_splits, which mla_workspace_bytes
// counts), after checking that p's workspace holds that many splits' partials.
inline int64_t mla_wgmma_checked_splits(const MlaAttentionParams& p, const std::string& kernel,
                                        int sms) {
  const int64_t splits = mla_wgmma_splits(p.num_tokens, p.num_heads, p.max_seq_len, sms);
  const size_t need = static_cast<size_t>(splits) *
                      static_cast<size_t>(p.num_tokens * p.num_heads * (kMlaLatentDim + 1)) *
                      sizeof(float);
  if (splits > 1)
    WS_CUDA_REQUIRE(p.workspace != nullptr && p.workspace_bytes >= need,
                    "mla " + kernel + ": workspace of " + std::to_string(p.workspace_bytes) +
                        " bytes, need " + std::to_string(need));
  return splits;
}

}  // namespace wideserve::cuda
