// Internal to the MLA kernels: the wgmma decode kernel ("v5", mla_decode_wgmma.cu) that
// launch_mla_decode runs for MlaDecodeKernel::kV5 when the head count allows it.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "backend/cuda/attention/mla.h"

namespace wideserve::cuda {

// Per-CTA timestamps of builds with -DWS_MLA_TRACE (mla_bench --trace): [cta][point], ns.
inline constexpr int kMlaTraceCtas = 4096;
enum MlaTracePoint : int {
  kTraceEntry = 0,         // after pdl_wait (thread 0)
  kTraceSm = 1,            // the SM id, not a time
  kTraceRingIssued = 2,    // producer: the first ring's worth of tiles issued
  kTraceProducerDone = 3,  // producer: every tile issued
  kTraceQLanded = 4,       // consumers: Q in shared memory
  kTraceTile0Landed = 5,   // WG0: tile 0 in shared memory
  kTraceLoopStart = 6,     // WG0: first P handed over
  kTraceLoopEnd = 7,       // WG0: last tile done
  kTraceStored = 8,        // thread 0: its output rows stored
  kTraceWg1End = 9,        // WG1: last tile done
  kTraceSynced = 10,       // thread 0: both consumer warpgroups past the epilogue's barrier
  kTraceTile3Landed = 11,  // WG0: tile min(3, ntiles - 1) in shared memory
  kMlaTracePoints = 12
};
// Whether v5 stages its output rows in shared memory and writes them with bulk copies (default
// on; tests and benchmarks turn it off to compare with the per-thread stores). Process-wide.
void set_mla_v5_bulk_store(bool on);
bool mla_v5_bulk_store();
// Copies the last launch's trace into out; false when this build records none.
bool mla_decode_wgmma_trace(std::vector<unsigned long long>* out);

// Heads a multiple of 64 (one CTA per token x 64 heads x KV split).
bool mla_decode_wgmma_supported(const MlaAttentionParams& p);
// What launch_mla_decode(kV5) runs it for: mla_wgmma_preferred (mla_plan.h) of p's sizes.
bool mla_decode_wgmma_preferred(const MlaAttentionParams& p);
// Same contract as launch_mla_decode (params, workspace, outputs); unsupported heads throw.
void launch_mla_decode_wgmma(const MlaAttentionParams& p, cudaStream_t s);

}  // namespace wideserve::cuda
