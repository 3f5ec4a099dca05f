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
  // One CTA per SM (shared memory bound). Each split keeps >= 2 KV tiles (128 rows); pick the
  // split count with the best wave efficiency, preferring fewer splits on ties.
  const int64_t max_splits =
      std::clamp<int64_t>((std::max<int64_t>(max_seq_len, 1) + 127) / 128, 1, sms);
  double best = -1;
  for (int64_t s = 1; s <= max_splits; ++s) {
    const int64_t ctas = base * s, waves = (ctas + sms - 1) / sms;
    const double eff = static_cast<double>(ctas) / static_cast<double>(waves * sms);
    if (eff > best + 0.02) {
      best = eff;
      p.splits = s;
    }
    if (ctas >= 4 * static_cast<int64_t>(sms)) break;
  }
  return p;
}

}  // namespace wideserve::cuda
