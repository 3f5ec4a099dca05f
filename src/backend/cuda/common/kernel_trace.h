// Per-CTA kernel timeline for benchmarks: instrumented kernels stamp %globaltimer at entry, after
// pdl_wait and at exit, and append one record per CTA to a device buffer. No Nsight Systems runs
// on the GPU machines, and ncu serializes kernels, so this is how a decode step's launches are
// seen as they overlap inside a CUDA graph. Compiled in only with -DWS_KERNEL_TRACE=ON.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

namespace wideserve::cuda {

// Which kernel wrote a record (kernel_trace_name gives its name).
enum class TraceKernel : uint32_t {
  kGemv = 1,
  kGemvFp8,
  kRmsNorm,
  kRopePrep,
  kMlaDecodeTma,
  kMlaDecodeWgmma,
  kMlaDecodeWs,
  kMlaFwd,
  kMlaCombine,
  kRouting,
  kMoeSmallUp,
  kMoeSmallDown,
  kMoeSmallDownBf16,
  kSiluMul,
  kEmbedding,
  kArgmax,
  kStamp,  // kernel_trace_stamp: gridDim.y is its tag
  kMlaToken,
  kCount
};

// One CTA of one launch; times in ns of %globaltimer, wait = 0 when the CTA never waited.
struct KernelTraceRecord {
  uint32_t kernel;
  uint32_t grid;  // gridDim.x | gridDim.y << 16, to tell a kernel's call sites apart
  uint64_t start, wait, end;
};

const char* kernel_trace_name(uint32_t kernel);
// Starts recording (per_sm records per SM; later CTAs on a full SM are dropped and counted).
// Throws when no kernel was built with WS_KERNEL_TRACE.
void kernel_trace_start(int64_t per_sm = 8192);
// Stops recording and returns every record so far, sorted by start (must be synchronised).
std::vector<KernelTraceRecord> kernel_trace_stop(int64_t* dropped = nullptr);

// Where records go (each traced translation unit's constant copy): per-SM slices of per_sm
// records, counts[sm] used so far; records == nullptr: not recording.
struct KernelTraceState {
  KernelTraceRecord* records;
  unsigned* counts;
  unsigned per_sm;
};

// One launch of one kernel: its CTAs' first start, first / last wait return and last end.
struct KernelTraceLaunch {
  uint32_t kernel = 0, grid = 0, ctas = 0;
  uint64_t start = 0, wait_first = 0, wait_last = 0, end = 0;
};
// Groups records into launches (a launch ends before the next launch of the same kernel and
// grid starts), sorted by start.
std::vector<KernelTraceLaunch> kernel_trace_launches(const std::vector<KernelTraceRecord>& recs);

// Trace builds: a one-thread kernel on `stream` whose record marks when the work before it in
// the stream finished (e.g. a cuBLAS kernel, which cannot be instrumented); tag 1..65535 goes to
// the record's grid. Other builds: nothing is launched.
void kernel_trace_stamp(cudaStream_t stream, unsigned tag);

// Registers a translation unit's binder (kernel_trace.cuh does it; not for direct use).
void kernel_trace_register(void (*bind)(const void* state, size_t bytes));

}  // namespace wideserve::cuda
