// Internals of BlasContext shared by the GEMM translation units: the cuBLASLt handle, workspace,
// plan cache and the FP8 fallback scratch. Not for use outside src/backend/cuda/gemm.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"

namespace wideserve::cuda {

inline constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;

enum class PlanKind : int { kBf16 = 0, kFp8Block = 1 };

// Everything a cuBLASLt algorithm choice depends on; pointer alignments are part of the key so an
// algorithm picked for 256-byte aligned buffers is never run on an offset slice.
struct PlanKey {
  PlanKind kind;
  int64_t m, n, k, ldx, ldw, ldy;
  int y_f32, beta_nonzero, align_x, align_w, align_y;
  bool operator==(const PlanKey&) const = default;
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix(static_cast<uint64_t>(k.kind));
    mix(k.m), mix(k.n), mix(k.k), mix(k.ldx), mix(k.ldw), mix(k.ldy);
    mix(k.y_f32), mix(k.beta_nonzero), mix(k.align_x), mix(k.align_w), mix(k.align_y);
    return static_cast<size_t>(h);
  }
};

// One matmul configuration: descriptors plus the algorithm it runs (has_algo false: cuBLASLt
// offered none, callers fall back). With autotuning on, candidates holds the heuristic's ranked
// list and algo becomes the fastest of them on the first call outside graph capture.
struct BlasPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
  std::vector<cublasLtMatmulAlgo_t> candidates;
  bool tuned = false;
  BlasPlan() = default;
  BlasPlan(const BlasPlan&) = delete;
  BlasPlan& operator=(const BlasPlan&) = delete;
  ~BlasPlan();
};

struct BlasContext::Impl {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer<char> workspace;
  std::unordered_map<PlanKey, std::unique_ptr<BlasPlan>, PlanKeyHash> plans;
  DeviceBuffer<__nv_bfloat16> scratch_x, scratch_w;  // FP8 fallback: dequantized x and w
  DeviceBuffer<char> stage;  // FP8 cuBLASLt path: scales/rows restaged to 16-byte strides
  Fp8GemmPath last_fp8_path = Fp8GemmPath::kAuto;
  bool last_bf16_gemv = false;
  int autotune = 0;  // heuristic candidates timed per plan (<= 1: take the heuristic's first)
  std::vector<GemmTuneRecord> tune_records;

  // The cached plan for key, built by build() on first use (build fills desc and layouts).
  BlasPlan& plan(const PlanKey& key, const std::function<void(BlasPlan&)>& build);
  // Runs the heuristic for a built plan; sets has_algo (and candidates when autotuning).
  void choose_algo(BlasPlan& plan, const PlanKey& key);
  // Runs the real call: algo on output y (y_bytes of scratch the tuner owns).
  using TuneLaunch = std::function<cublasStatus_t(const cublasLtMatmulAlgo_t& algo, void* y)>;
  // Times every candidate of an untuned plan on this stream (L2 flushed before each run, output
  // into scratch so beta != 0 calls leave y alone) and keeps the fastest. No-op while the stream
  // captures a graph (the eager warm-up before a capture tunes) or when scratch cannot be had.
  void tune(BlasPlan& plan, const PlanKey& key, size_t y_bytes, cudaStream_t stream,
            const TuneLaunch& launch);
};

// Grows buf to at least count elements (synchronizing the device first); refuses while the stream
// captures a graph.
void ensure_scratch(DeviceBuffer<char>& buf, size_t count, cudaStream_t stream);
void ensure_scratch(DeviceBuffer<__nv_bfloat16>& buf, size_t count, cudaStream_t stream);

// Byte layout of the cuBLASLt path's staging area for one call (offsets 256-byte aligned).
struct Fp8Stage {
  int64_t m4, kb, kb4, nb, w_ld;  // m rounded up to 4; k blocks (and rounded up to 4); n blocks
  bool stage_w, stage_xs, pad_m;  // what has to be restaged
  size_t off_ws, off_xs, off_x, off_y, bytes;
};
Fp8Stage plan_fp8_stage(const GemmFp8BlockParams& p);

// Largest power of two (capped at 256) dividing the address: cuBLASLt's alignment preference.
int pointer_alignment(const void* p);

}  // namespace wideserve::cuda
