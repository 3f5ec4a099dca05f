// launch_argmax (ops.h). One 1024-thread CTA per row, float4 loads: one row of a 129k vocabulary
// is 8 rounds of loads from one SM (16 us on the H200 at batch 1). With a workspace and few rows,
// each row is split over up to 32 CTAs (one round of loads each); the last CTA of a row to finish
// (an atomic ticket) picks the best of the row's partial results with one warp and zeroes the
// ticket. Ties go to the lower index in every reduction, so both paths give the same ids.
#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kMaxSplit = 32;

// Keeps the larger value; among equal values the lower index. NaN never wins.
__device__ __forceinline__ void argmax_take(float v, int64_t i, float& best, int64_t& idx) {
  if (v > best || (v == best && i < idx)) {
    best = v;
    idx = i;
  }
}

// The best of row x's elements [b, e) (float4 units [b / 4, e / 4) on the vector path).
__device__ __forceinline__ void argmax_scan(const float* x, bool vec, int64_t b, int64_t e,
                                            float& best, int64_t& idx) {
  if (vec) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll 4
    for (int64_t j = b / 4 + threadIdx.x; j < e / 4; j += blockDim.x) {
      const float4 v = x4[j];
      argmax_take(v.x, 4 * j, best, idx);
      argmax_take(v.y, 4 * j + 1, best, idx);
      argmax_take(v.z, 4 * j + 2, best, idx);
      argmax_take(v.w, 4 * j + 3, best, idx);
    }
  } else {
#pragma unroll 8
    for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) argmax_take(x[i], i, best, idx);
  }
}

__device__ __forceinline__ void warp_take(float& best, int64_t& idx) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    argmax_take(ov, oi, best, idx);
  }
}

// The block's best; thread 0 holds it.
__device__ __forceinline__ void block_take(float& best, int64_t& idx) {
  __shared__ float sv[32];
  __shared__ int64_t si[32];
  warp_take(best, idx);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = best;
    si[warp] = idx;
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x >> 5;
    best = lane < warps ? sv[lane] : -INFINITY;
    idx = lane < warps ? si[lane] : INT64_MAX;
    warp_take(best, idx);
  }
}

bool vector_path(const ArgmaxParams& p) {
  return p.vocab % 4 == 0 && (reinterpret_cast<uintptr_t>(p.logits) & 15) == 0;
}

__global__ void argmax_kernel(ArgmaxParams p, bool vec) {
  KernelTrace kt_(TraceKernel::kArgmax);
  kt_.wait();
  pdl_launch_dependents();
  const int64_t r = blockIdx.x;
  float best = -INFINITY;
  int64_t idx = INT64_MAX;
  argmax_scan(p.logits + r * p.vocab, vec, 0, p.vocab, best, idx);
  block_take(best, idx);
  // Every value NaN: token 0.
  if (threadIdx.x == 0) p.ids[r] = static_cast<int32_t>(idx == INT64_MAX ? 0 : idx);
}

// Workspace, one record per row at a fixed stride (so launches of any row count share it): the
// ticket, then the chunks' partial indices and values.
struct RowRecord {
  unsigned ticket;
  unsigned pad;
  int64_t idx[kMaxSplit];
  float val[kMaxSplit];
};

// Grid (splits, rows), vector path: CTA c scans chunk c of row r (whole float4s).
__global__ void argmax_split_kernel(ArgmaxParams p, RowRecord* rec) {
  KernelTrace kt_(TraceKernel::kArgmax);
  kt_.wait();
  pdl_launch_dependents();
  const int64_t r = blockIdx.y, c = blockIdx.x, n = gridDim.x, n4 = p.vocab / 4;
  float best = -INFINITY;
  int64_t idx = INT64_MAX;
  argmax_scan(p.logits + r * p.vocab, true, 4 * (n4 * c / n), 4 * (n4 * (c + 1) / n), best, idx);
  block_take(best, idx);
  RowRecord& rr = rec[r];
  __shared__ bool last;
  if (threadIdx.x == 0) {
    rr.idx[c] = idx;
    rr.val[c] = best;
    __threadfence();
    last = atomicAdd(&rr.ticket, 1u) == static_cast<unsigned>(n - 1);
  }
  __syncthreads();
  if (!last || threadIdx.x >= 32) return;
  // The row's last CTA: warp 0 takes the best of the n <= 32 partial results in one round.
  __threadfence();
  const int lane = static_cast<int>(threadIdx.x);
  best = lane < n ? __ldcg(rr.val + lane) : -INFINITY;
  idx = lane < n ? __ldcg(rr.idx + lane) : INT64_MAX;
  warp_take(best, idx);
  if (lane == 0) {
    p.ids[r] = static_cast<int32_t>(idx == INT64_MAX ? 0 : idx);
    rr.ticket = 0;  // every CTA of the row has counted: the next launch starts from zero
  }
}

int sm_count_cached() {
  static int sms[64] = {};
  int dev = 0;
  WS_CUDA_CHECK(cudaGetDevice(&dev));
  int& n = sms[dev & 63];
  if (n == 0) WS_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return n;
}

}  // namespace

size_t argmax_workspace_bytes(int64_t rows) {
  return static_cast<size_t>(rows) * sizeof(RowRecord);
}

void launch_argmax(const ArgmaxParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  WS_CUDA_REQUIRE(p.logits && p.ids && p.vocab > 0, "argmax: bad arguments");
  const bool vec = vector_path(p);
  // Enough CTAs for two per SM, at most kMaxSplit per row and a few thousand elements each.
  const int64_t want = (2 * sm_count_cached() + p.rows - 1) / p.rows;
  const int64_t splits = std::min<int64_t>({want, kMaxSplit, p.vocab / 4096});
  if (vec && splits >= 2 && p.workspace != nullptr &&
      p.workspace_bytes >= argmax_workspace_bytes(p.rows) && p.rows <= 65535) {
    launch_pdl(argmax_split_kernel,
               dim3(static_cast<unsigned>(splits), static_cast<unsigned>(p.rows)), dim3(kThreads),
               0, stream, p, static_cast<RowRecord*>(p.workspace));
    return;
  }
  launch_pdl(argmax_kernel, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0, stream, p, vec);
}

}  // namespace wideserve::cuda
