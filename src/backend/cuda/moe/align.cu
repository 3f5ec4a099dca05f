// Sorting (token, slot) pairs by expert: a deterministic, stable counting sort.
// Large path (any T*k), three launches:
//   1. count:  per chunk of kChunk slots, the rows of each local expert (shared-memory atomics;
//              counts do not depend on their order).
//   2. scan:   one block; per expert a running sum over chunks (chunk bases) and the exclusive scan
//              over experts (offsets).
//   3. place:  per chunk, the stable rank of each slot among earlier slots of its expert in the
//              chunk (warp match + per-warp counts), so tokens stay ascending within an expert.
// Small path (T*k <= kMoeAlignSmallSlots), one block of kSmallWarps warps, one launch: warp w owns
// a contiguous run of slots; it ranks each slot among the earlier ones of its expert in its run
// (warp match + a per-warp count row of 16-bit counters in shared memory), the block then scans the
// count rows over warps (packed pairs of experts) and over experts, and places every slot.
// Both give the same outputs as the CPU counting sort. No host synchronisation; sizes come from the
// host-known T*k.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe.h"

namespace wideserve::cuda {
namespace {

constexpr int kChunk = 1024;   // slots per chunk
constexpr int kThreads = 256;  // threads of the count / place kernels
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

// Inclusive prefix sum of v over the lanes of a full warp.
__device__ __forceinline__ int warp_inclusive_sum(int v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int u = __shfl_up_sync(kFull, v, o);
    if (lane >= o) v += u;
  }
  return v;
}

__device__ __forceinline__ int local_expert(const MoeAlignParams& p, int64_t slot) {
  const int64_t e = static_cast<int64_t>(p.topk_ids[slot]) - p.expert_begin;
  return (e >= 0 && e < p.num_experts) ? static_cast<int>(e) : -1;
}

// chunk_counts[c][e] = rows of local expert e among the slots of chunk c.
__global__ void align_count_kernel(MoeAlignParams p, int* chunk_counts) {
  extern __shared__ int cnt[];
  const int E = static_cast<int>(p.num_experts);
  for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = 0;
  __syncthreads();
  const int64_t slots = p.num_tokens * p.top_k;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk;
  for (int64_t s = begin + threadIdx.x; s < begin + kChunk && s < slots; s += blockDim.x) {
    const int e = local_expert(p, s);
    if (e >= 0) atomicAdd(&cnt[e], 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x) chunk_counts[blockIdx.x * E + e] = cnt[e];
}

// One block, one thread per expert: chunk_counts -> chunk bases (in place), counts, offsets.
__global__ void align_scan_kernel(MoeAlignParams p, int* chunk_counts, int chunks) {
  __shared__ int warp_sums[32];
  const int E = static_cast<int>(p.num_experts);
  const int e = threadIdx.x;
  int run = 0;
  if (e < E) {
    for (int c = 0; c < chunks; ++c) {
      const int v = chunk_counts[c * E + e];
      chunk_counts[c * E + e] = run;
      run += v;
    }
    p.expert_counts[e] = run;
  }
  // Block exclusive scan of run over experts.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int incl = warp_inclusive_sum(run, lane);
  if (lane == 31) warp_sums[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x / 32;
    const int w = warp_inclusive_sum(lane < nw ? warp_sums[lane] : 0, lane);
    if (lane < nw) warp_sums[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const int excl = incl - run + (warp > 0 ? warp_sums[warp - 1] : 0);
  if (e < E) p.expert_offsets[e] = excl;
  if (e == E - 1) p.expert_offsets[E] = excl + run;
}

// Stable placement of chunk c's slots; also marks sorted rows >= total as -1.
__global__ void align_place_kernel(MoeAlignParams p, const int* chunk_base) {
  extern __shared__ int sm[];
  const int E = static_cast<int>(p.num_experts);
  int* running = sm;       // [E] next row of expert e for this chunk
  int* warp_cnt = sm + E;  // [kWarps][E] rows of expert e in warp w of this step
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    running[e] = p.expert_offsets[e] + chunk_base[blockIdx.x * E + e];
    for (int w = 0; w < kWarps; ++w) warp_cnt[w * E + e] = 0;
  }
  __syncthreads();
  const int64_t slots = p.num_tokens * p.top_k;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk;
  for (int64_t step = begin; step < begin + kChunk && step < slots; step += kThreads) {
    const int64_t s = step + threadIdx.x;
    const int e = s < slots ? local_expert(p, s) : -1;
    const unsigned peers = __match_any_sync(kFull, e);
    const int rank = __popc(peers & ((1u << lane) - 1u));
    if (e >= 0 && rank == 0) warp_cnt[warp * E + e] = __popc(peers);
    __syncthreads();
    if (s < slots) {
      if (e >= 0) {
        int row = running[e] + rank;
        for (int w = 0; w < warp; ++w) row += warp_cnt[w * E + e];
        p.sorted_to_slot[row] = static_cast<int32_t>(s);
        p.slot_to_sorted[s] = row;
      } else {
        p.slot_to_sorted[s] = -1;
      }
    }
    __syncthreads();
    for (int x = threadIdx.x; x < E; x += blockDim.x) {
      int add = 0;
      for (int w = 0; w < kWarps; ++w) {
        add += warp_cnt[w * E + x];
        warp_cnt[w * E + x] = 0;
      }
      running[x] += add;
    }
    __syncthreads();
  }
  // Rows past the valid total (remote experts) map to no slot.
  const int total = p.expert_offsets[E];
  for (int64_t r = begin + threadIdx.x; r < begin + kChunk && r < slots; r += blockDim.x)
    if (r >= total) p.sorted_to_slot[r] = -1;
}

// ---- Small path: one block
// -----------------------------------------------------------------------

constexpr int kSmallWarps = 16;
constexpr int kSmallThreads = kSmallWarps * 32;
constexpr int kSmallIters = static_cast<int>(kMoeAlignSmallSlots) / kSmallThreads;  // slots / lane
static_assert(kSmallIters * kSmallThreads == kMoeAlignSmallSlots, "slots must tile the block");
// A warp's run holds <= 32 * kSmallIters = 256 slots and a whole count <= 4096 slots: 16-bit
// counters, two experts per 32-bit word; packed adds never carry across the halves.
static_assert(kMoeAlignSmallSlots < 65536, "16-bit counters");

__global__ void __launch_bounds__(kSmallThreads) align_small_kernel(MoeAlignParams p) {
  extern __shared__ uint32_t rows[];  // [kSmallWarps][pairs]: counts, then bases, packed u16 pairs
  __shared__ int offsets_s[1024];
  __shared__ int warp_tot[kSmallWarps];
  pdl_wait();
  pdl_launch_dependents();
  const int E = static_cast<int>(p.num_experts);
  const int pairs = (E + 1) / 2;
  const int S = static_cast<int>(p.num_tokens * p.top_k);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int iters = (S + kSmallThreads - 1) / kSmallThreads;  // per lane
  const int run_begin = warp * iters * 32;                    // this warp's slots
  // Loads first: their latency overlaps the zeroing.
  int ex[kSmallIters];
#pragma unroll
  for (int it = 0; it < kSmallIters; ++it) {
    const int s = run_begin + it * 32 + lane;
    ex[it] = (it < iters && s < S) ? local_expert(p, s) : -1;
  }
  for (int i = threadIdx.x; i < kSmallWarps * pairs; i += kSmallThreads) rows[i] = 0;
  __syncthreads();

  // 1. Rank of each slot among the earlier slots of its expert in this warp's run.
  uint16_t* my_row = reinterpret_cast<uint16_t*>(rows + warp * pairs);
  const unsigned lower = (1u << lane) - 1u;
  int rank[kSmallIters];
#pragma unroll
  for (int it = 0; it < kSmallIters; ++it) {
    rank[it] = 0;
    if (it < iters) {  // uniform over the block
      const int e = ex[it];
      const unsigned peers = __match_any_sync(kFull, e);
      const int before = __popc(peers & lower);
      const int base = e >= 0 ? my_row[e] : 0;
      __syncwarp();
      if (e >= 0 && before == 0) my_row[e] = static_cast<uint16_t>(base + __popc(peers));
      __syncwarp();
      rank[it] = base + before;
    }
  }
  __syncthreads();

  // 2. Thread x owns experts 2x, 2x+1: counts -> per-warp bases (exclusive over warps, in place),
  //    then the block's exclusive scan over experts.
  const int x = threadIdx.x;
  uint32_t total = 0;
  if (x < pairs) {
    uint32_t v[kSmallWarps];
#pragma unroll
    for (int w = 0; w < kSmallWarps; ++w) v[w] = rows[w * pairs + x];
#pragma unroll
    for (int w = 0; w < kSmallWarps; ++w) {
      rows[w * pairs + x] = total;
      total += v[w];
    }
  }
  const int c0 = static_cast<int>(total & 0xFFFFu), c1 = static_cast<int>(total >> 16);
  const int incl = warp_inclusive_sum(c0 + c1, lane);
  if (lane == 31) warp_tot[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    const int v = warp_inclusive_sum(lane < kSmallWarps ? warp_tot[lane] : 0, lane);
    if (lane < kSmallWarps) warp_tot[lane] = v;  // inclusive over warps
  }
  __syncthreads();
  const int excl = incl - c0 - c1 + (warp > 0 ? warp_tot[warp - 1] : 0);
  const int R = warp_tot[kSmallWarps - 1];
  if (x < pairs) {
    offsets_s[2 * x] = excl;
    p.expert_counts[2 * x] = c0;
    p.expert_offsets[2 * x] = excl;
    if (2 * x + 1 < E) {
      offsets_s[2 * x + 1] = excl + c0;
      p.expert_counts[2 * x + 1] = c1;
      p.expert_offsets[2 * x + 1] = excl + c0;
    }
  }
  if (x == 0) p.expert_offsets[E] = R;
  __syncthreads();

  // 3. Placement: row = expert offset + earlier warps' rows of the expert + rank in the run.
#pragma unroll
  for (int it = 0; it < kSmallIters; ++it) {
    const int s = run_begin + it * 32 + lane;
    if (it < iters && s < S) {
      const int e = ex[it];
      if (e >= 0) {
        const int row = offsets_s[e] + my_row[e] + rank[it];
        p.sorted_to_slot[row] = s;
        p.slot_to_sorted[s] = row;
      } else {
        p.slot_to_sorted[s] = -1;
      }
    }
  }
  // Rows past the valid total (remote experts) map to no slot.
  for (int r = R + threadIdx.x; r < S; r += kSmallThreads) p.sorted_to_slot[r] = -1;
}

int64_t chunk_count(int64_t slots) {
  return (slots + kChunk - 1) / kChunk;
}

}  // namespace

size_t moe_align_workspace_bytes(int64_t num_tokens, int64_t top_k, int64_t num_experts) {
  return static_cast<size_t>(std::max<int64_t>(chunk_count(num_tokens * top_k), 1) * num_experts) *
         sizeof(int);
}

void launch_moe_align_path(const MoeAlignParams& p, MoePath path, cudaStream_t stream) {
  WS_CUDA_REQUIRE(
      p.num_tokens >= 0 && p.top_k > 0,
      "moe align: tokens " + std::to_string(p.num_tokens) + ", top_k " + std::to_string(p.top_k));
  WS_CUDA_REQUIRE(
      p.num_experts > 0 && p.num_experts <= 1024,
      "moe align: num_experts must be in [1, 1024], got " + std::to_string(p.num_experts));
  const int64_t slots = p.num_tokens * p.top_k;
  WS_CUDA_REQUIRE(slots < (int64_t(1) << 31), "moe align: too many slots");
  WS_CUDA_REQUIRE(p.expert_counts && p.expert_offsets, "moe align: null pointer");
  WS_CUDA_REQUIRE(slots == 0 || (p.topk_ids && p.sorted_to_slot && p.slot_to_sorted),
                  "moe align: null pointer");
  const bool small_ok = slots <= kMoeAlignSmallSlots;
  // The rank path is a routing kernel; align runs its small path for it.
  if (path == MoePath::kRank) path = MoePath::kSmall;
  WS_CUDA_REQUIRE(path != MoePath::kSmall || small_ok,
                  "moe align: the one-launch path needs T*k <= " +
                      std::to_string(kMoeAlignSmallSlots) + ", got " + std::to_string(slots));
  const int E = static_cast<int>(p.num_experts);
  if (path == MoePath::kSmall || (path == MoePath::kAuto && small_ok)) {
    const size_t smem = size_t(kSmallWarps) * ((E + 1) / 2) * sizeof(uint32_t);  // <= 32 KiB
    launch_pdl(align_small_kernel, dim3(1), dim3(kSmallThreads), smem, stream, p);
    return;
  }
  WS_CUDA_REQUIRE(p.workspace != nullptr, "moe align: null workspace");
  const int chunks = static_cast<int>(std::max<int64_t>(chunk_count(slots), 1));
  int* ws = static_cast<int*>(p.workspace);
  const size_t count_smem = E * sizeof(int);
  const size_t place_smem = (1 + kWarps) * E * sizeof(int);  // <= 36 KiB for E = 1024
  align_count_kernel<<<chunks, kThreads, count_smem, stream>>>(p, ws);
  WS_CUDA_CHECK_LAUNCH();
  const int scan_threads = (E + 31) / 32 * 32;
  align_scan_kernel<<<1, scan_threads, 0, stream>>>(p, ws, chunks);
  WS_CUDA_CHECK_LAUNCH();
  if (slots == 0) return;
  align_place_kernel<<<chunks, kThreads, place_smem, stream>>>(p, ws);
  WS_CUDA_CHECK_LAUNCH();
}

void launch_moe_align(const MoeAlignParams& p, cudaStream_t stream) {
  launch_moe_align_path(p, kMoeDefaultPath, stream);
}

}  // namespace wideserve::cuda
