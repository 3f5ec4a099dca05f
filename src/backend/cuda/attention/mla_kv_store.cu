// Scatter of this step's latent rows into the paged MLA cache: 16-byte copies, one row per 72
// lanes.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/common/cuda_check.h"

namespace wideserve::cuda {
namespace {

constexpr int kChunks = kMlaRowDim * 2 / 16;  // 72 chunks of 8 bf16

// Slots < 0 are padding and skipped; slots >= num_slots are skipped too (no device-side error
// path).
__global__ void mla_kv_store_kernel(const uint4* rows, const int32_t* slots, uint4* cache,
                                    int64_t num_tokens, int64_t num_slots) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= num_tokens * kChunks) return;
  const int64_t t = i / kChunks, c = i % kChunks;
  const int64_t slot = slots[t];
  if (slot < 0 || slot >= num_slots) return;
  cache[slot * kChunks + c] = rows[t * kChunks + c];
}

}  // namespace

void launch_mla_kv_store(const KvStoreParams& p, cudaStream_t s) {
  WS_CUDA_REQUIRE(p.num_tokens >= 0 && p.num_slots > 0,
                  "mla_kv_store: num_tokens " + std::to_string(p.num_tokens) + ", num_slots " +
                      std::to_string(p.num_slots));
  if (p.num_tokens == 0) return;
  WS_CUDA_REQUIRE(p.rows && p.slot_mapping && p.kv_cache, "mla_kv_store: null pointer");
  WS_CUDA_REQUIRE(reinterpret_cast<uintptr_t>(p.rows) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.kv_cache) % 16 == 0,
                  "mla_kv_store: rows and cache must be 16-byte aligned");
  const int64_t n = p.num_tokens * kChunks;
  const int threads = 256;
  mla_kv_store_kernel<<<static_cast<unsigned>((n + threads - 1) / threads), threads, 0, s>>>(
      reinterpret_cast<const uint4*>(p.rows), p.slot_mapping, reinterpret_cast<uint4*>(p.kv_cache),
      p.num_tokens, p.num_slots);
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
