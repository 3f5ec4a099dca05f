#include "backend/cuda/common/kernel_trace.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "backend/cuda/common/cuda_check.h"
#include "common/check.h"

namespace wideserve::cuda {

namespace {

// %smid can exceed the SM count on floorswept parts: slices for this many ids.
constexpr int kMaxSmIds = 256;

struct Registry {
  std::mutex mu;
  std::vector<void (*)(const void*, size_t)> binders;
  KernelTraceState state{nullptr, nullptr, 0};
};
Registry& registry() {
  static Registry r;
  return r;
}

void bind_all(Registry& r) {
  for (auto* bind : r.binders) bind(&r.state, sizeof r.state);
}

}  // namespace

const char* kernel_trace_name(uint32_t kernel) {
  static const char* const kNames[] = {"?",         "gemv",          "gemv_fp8",      "rms_norm",
                                       "rope_prep", "mla_dec_tma",   "mla_dec_wgmma", "mla_dec_ws",
                                       "mla_fwd",   "mla_combine",   "routing",       "moe_up",
                                       "moe_down",  "moe_down_bf16", "silu_mul",      "embedding",
                                       "argmax",    "stamp",         "mla_token"};
  static_assert(sizeof kNames / sizeof kNames[0] == static_cast<size_t>(TraceKernel::kCount));
  return kernel < static_cast<uint32_t>(TraceKernel::kCount) ? kNames[kernel] : "?";
}

void kernel_trace_register(void (*bind)(const void* state, size_t bytes)) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.binders.push_back(bind);
}

void kernel_trace_start(int64_t per_sm) {
  WS_CHECK_ARG(per_sm > 0 && per_sm <= (int64_t{1} << 20), "kernel trace: per_sm out of range");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  WS_CHECK_ARG(r.state.records == nullptr, "kernel trace already started");
  WS_CHECK_ARG(!r.binders.empty(), "kernel trace: configure with -DWS_KERNEL_TRACE=ON");
  WS_CUDA_CHECK(cudaMalloc(&r.state.records,
                           sizeof(KernelTraceRecord) * static_cast<size_t>(per_sm) * kMaxSmIds));
  WS_CUDA_CHECK(cudaMalloc(&r.state.counts, sizeof(unsigned) * kMaxSmIds));
  WS_CUDA_CHECK(cudaMemset(r.state.counts, 0, sizeof(unsigned) * kMaxSmIds));
  r.state.per_sm = static_cast<unsigned>(per_sm);
  bind_all(r);
}

std::vector<KernelTraceRecord> kernel_trace_stop(int64_t* dropped) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  WS_CHECK_ARG(r.state.records != nullptr, "kernel trace not started");
  std::vector<unsigned> counts(kMaxSmIds);
  WS_CUDA_CHECK(cudaMemcpy(counts.data(), r.state.counts, sizeof(unsigned) * kMaxSmIds,
                           cudaMemcpyDeviceToHost));
  std::vector<KernelTraceRecord> all(static_cast<size_t>(r.state.per_sm) * kMaxSmIds);
  WS_CUDA_CHECK(cudaMemcpy(all.data(), r.state.records, sizeof(KernelTraceRecord) * all.size(),
                           cudaMemcpyDeviceToHost));
  std::vector<KernelTraceRecord> out;
  int64_t lost = 0;
  for (int sm = 0; sm < kMaxSmIds; ++sm) {
    const unsigned n = std::min(counts[sm], r.state.per_sm);
    lost += counts[sm] - n;
    for (unsigned i = 0; i < n; ++i) out.push_back(all[sm * r.state.per_sm + i]);
  }
  if (dropped != nullptr) *dropped = lost;
  WS_CUDA_CHECK(cudaFree(r.state.records));
  WS_CUDA_CHECK(cudaFree(r.state.counts));
  r.state = {nullptr, nullptr, 0};
  bind_all(r);
  std::sort(out.begin(), out.end(), [](const KernelTraceRecord& a, const KernelTraceRecord& b) {
    return a.start < b.start;
  });
  return out;
}

std::vector<KernelTraceLaunch> kernel_trace_launches(const std::vector<KernelTraceRecord>& recs) {
  // Open launch per (kernel, grid); records arrive by start.
  std::map<std::pair<uint32_t, uint32_t>, size_t> open;
  std::vector<KernelTraceLaunch> out;
  for (const KernelTraceRecord& rec : recs) {
    const auto key = std::make_pair(rec.kernel, rec.grid);
    auto it = open.find(key);
    if (it == open.end() || rec.start > out[it->second].end) {
      KernelTraceLaunch l;
      l.kernel = rec.kernel;
      l.grid = rec.grid;
      l.start = rec.start;
      out.push_back(l);
      it = open.insert_or_assign(key, out.size() - 1).first;
    }
    KernelTraceLaunch& l = out[it->second];
    ++l.ctas;
    l.end = std::max(l.end, rec.end);
    if (rec.wait != 0) {
      l.wait_first = l.wait_first == 0 ? rec.wait : std::min(l.wait_first, rec.wait);
      l.wait_last = std::max(l.wait_last, rec.wait);
    }
  }
  std::sort(out.begin(), out.end(), [](const KernelTraceLaunch& a, const KernelTraceLaunch& b) {
    return a.start < b.start;
  });
  return out;
}

}  // namespace wideserve::cuda
