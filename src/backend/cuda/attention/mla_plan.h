// Host-side launch plan of the MLA attention kernels: query rows per CTA, head blocks and the
// split-KV count, from host-known sizes only (so a captured decode graph replays the same plan).
#pragma once

#include <algorithm>
#include <cstdint>

namespace wideserve::cuda {

struct MlaPlan {
  int mb = 1;               // m16 tiles of query rows per CTA (rows = 16 * mb)
  int hpb = 16;             // heads per CTA block
  int tpc = 1;              // tokens per CTA (prefill packs tokens when heads are few)
  int64_t head_blocks = 1;  // gridDim.x
  int64_t groups = 1;       // gridDim.y = ceil(num_tokens / tpc)
  int64_t splits = 1;       // gridDim.z: KV splits, each an equal share of its row's length
};

// Multiprocessors of the current device (cached per device).
int sm_count();

// Split count in [1, max_splits] with the best wave efficiency of base * splits CTAs at one CTA
// per SM (shared memory bound), fewer splits on ties (within 2%); stops past 4 waves.
inline int64_t mla_best_splits(int64_t base, int64_t max_splits, int sms) {
  int64_t splits = 1;
  double best = -1;
  for (int64_t s = 1; s <= max_splits; ++s) {
    const int64_t ctas = base * s, waves = (ctas + sms - 1) / sms;
    const double eff = static_cast<double>(ctas) / static_cast<double>(waves * sms);
    if (eff > best + 0.02) {
      best = eff;
      splits = s;
    }
    if (ctas >= 4 * static_cast<int64_t>(sms)) break;
  }
  return splits;
}

inline MlaPlan mla_plan(int64_t num_tokens, int64_t num_heads, int64_t max_seq_len, bool prefill,
                        int sms) {
  MlaPlan p;
  if (prefill) {
    p.mb = 2;
    p.hpb = static_cast<int>(std::min<int64_t>(num_heads, 32));
    p.tpc = 32 / p.hpb;
  } else {
    p.mb = num_heads <= 16 ? 1 : 2;
    p.hpb = 16 * p.mb;
    p.tpc = 1;
  }
  p.head_blocks = (num_heads + p.hpb - 1) / p.hpb;
  p.groups = (std::max<int64_t>(num_tokens, 1) + p.tpc - 1) / p.tpc;
  const int64_t base = p.head_blocks * p.groups;
  // Each split keeps >= 2 KV tiles (128 rows).
  const int64_t max_splits =
      std::clamp<int64_t>((std::max<int64_t>(max_seq_len, 1) + 127) / 128, 1, sms);
  p.splits = mla_best_splits(base, max_splits, sms);
  return p;
}

// Whether decode runs the wgmma kernel (v5): heads a multiple of 64 and >= 32 CTAs of one token
// x 64 heads before splitting. At one token x 128 heads x 4k v4 was faster on the H200 (32 vs
// 47 us: splits of two tiles each pay a 72 KB Q load), from 32 tokens v5 (110 vs 199 us).
inline bool mla_wgmma_preferred(int64_t num_tokens, int64_t num_heads) {
  return num_heads >= 64 && num_heads % 64 == 0 && num_tokens * (num_heads / 64) >= 32;
}

// Decode split count of the wgmma kernel (one CTA per token x 64 heads x split, one per SM):
// >= 64 cache rows (2 tiles) per split.
inline int64_t mla_wgmma_splits(int64_t num_tokens, int64_t num_heads, int64_t max_seq_len,
                                int sms) {
  const int64_t base = num_heads / 64 * std::max<int64_t>(num_tokens, 1);
  const int64_t max_splits =
      std::clamp<int64_t>((std::max<int64_t>(max_seq_len, 1) + 63) / 64, 1, sms);
  return mla_best_splits(base, max_splits, sms);
}

}  // namespace wideserve::cuda
