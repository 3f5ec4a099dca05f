#include <cublasLt.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/blas_context_impl.h"
#include "backend/cuda/gemm/gemm.h"

namespace wideserve::cuda {

BlasPlan::~BlasPlan() {
  // Destroy errors are ignored: nothing useful can be done in a destructor.
  if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
  if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
  if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
  if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
}

int pointer_alignment(const void* p) {
  auto v = reinterpret_cast<uintptr_t>(p);
  int a = 1;
  while (a < 256 && (v % (2 * a)) == 0) a *= 2;
  return a;
}

BlasPlan& BlasContext::Impl::plan(const PlanKey& key, const std::function<void(BlasPlan&)>& build) {
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  auto p = std::make_unique<BlasPlan>();
  build(*p);
  choose_algo(*p, key);
  return *plans.emplace(key, std::move(p)).first->second;
}

void BlasContext::Impl::choose_algo(BlasPlan& p, const PlanKey& key) {
  cublasLtMatmulPreference_t pref = nullptr;
  WS_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = kBlasWorkspaceBytes;
  auto set_u32 = [&](cublasLtMatmulPreferenceAttributes_t attr, uint32_t v) {
    WS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof(v)));
  };
  WS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // cuBLASLt: A = w, B = x, C = D = y.
  set_u32(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(key.align_w));
  set_u32(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(key.align_x));
  set_u32(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(key.align_y));
  set_u32(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(key.align_y));
  const int want = std::max(1, autotune);
  std::vector<cublasLtMatmulHeuristicResult_t> res(static_cast<size_t>(want));
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.c, p.c, pref, want,
                                                     res.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  // NOT_SUPPORTED just means no algorithm for this configuration; the caller falls back.
  if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED) WS_CUBLAS_CHECK(st);
  p.candidates.clear();
  if (st == CUBLAS_STATUS_SUCCESS)
    for (int i = 0; i < found; ++i)
      if (res[i].state == CUBLAS_STATUS_SUCCESS) p.candidates.push_back(res[i].algo);
  p.has_algo = !p.candidates.empty();
  if (p.has_algo) p.algo = p.candidates.front();
  p.tuned = p.candidates.size() <= 1;
}

void BlasContext::Impl::tune(BlasPlan& p, const PlanKey& key, size_t y_bytes, cudaStream_t stream,
                             const TuneLaunch& launch) {
  if (p.tuned) return;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  WS_CUDA_CHECK(cudaStreamIsCapturing(stream, &cap));
  if (cap != cudaStreamCaptureStatusNone) return;
  p.tuned = true;
  int dev = 0, l2 = 0;
  WS_CUDA_CHECK(cudaGetDevice(&dev));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  // Scratch for the output and for evicting L2 (weights are cold in a decode step); without the
  // memory, the heuristic's first choice stays.
  const size_t flush_bytes = 2 * static_cast<size_t>(std::max(l2, 1 << 20));
  void *y = nullptr, *flush = nullptr;
  if (cudaMalloc(&y, std::max<size_t>(y_bytes, 256)) != cudaSuccess ||
      cudaMalloc(&flush, flush_bytes) != cudaSuccess) {
    cudaGetLastError();
    if (y != nullptr) cudaFree(y);
    return;
  }
  cudaEvent_t ev0 = nullptr, ev1 = nullptr;
  WS_CUDA_CHECK(cudaEventCreate(&ev0));
  WS_CUDA_CHECK(cudaEventCreate(&ev1));
  constexpr int kReps = 5;
  std::vector<float> med(p.candidates.size(), std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < p.candidates.size(); ++i) {
    // A candidate the library rejects at launch is skipped.
    if (launch(p.candidates[i], y) != CUBLAS_STATUS_SUCCESS) continue;
    std::vector<float> us;
    for (int r = 0; r < kReps; ++r) {
      WS_CUDA_CHECK(cudaMemsetAsync(flush, r, flush_bytes, stream));
      WS_CUDA_CHECK(cudaEventRecord(ev0, stream));
      if (launch(p.candidates[i], y) != CUBLAS_STATUS_SUCCESS) break;
      WS_CUDA_CHECK(cudaEventRecord(ev1, stream));
      WS_CUDA_CHECK(cudaEventSynchronize(ev1));
      float ms = 0;
      WS_CUDA_CHECK(cudaEventElapsedTime(&ms, ev0, ev1));
      us.push_back(ms * 1000.f);
    }
    if (us.size() != kReps) continue;
    std::sort(us.begin(), us.end());
    med[i] = us[kReps / 2];
  }
  WS_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaEventDestroy(ev0);
  cudaEventDestroy(ev1);
  cudaFree(flush);
  cudaFree(y);
  const size_t best = static_cast<size_t>(std::min_element(med.begin(), med.end()) - med.begin());
  if (!std::isfinite(med[best])) return;  // none ran: keep the heuristic's first
  p.algo = p.candidates[best];
  tune_records.push_back(GemmTuneRecord{key.kind == PlanKind::kFp8Block, key.m, key.n, key.k,
                                        static_cast<int>(p.candidates.size()),
                                        static_cast<int>(best), med[0], med[best]});
}

BlasContext::BlasContext() : impl_(std::make_unique<Impl>()) {
  WS_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  impl_->workspace = DeviceBuffer<char>(kBlasWorkspaceBytes);
}

BlasContext::~BlasContext() {
  if (impl_ == nullptr) return;
  impl_->plans.clear();
  if (impl_->handle != nullptr) cublasLtDestroy(impl_->handle);
}

size_t BlasContext::plan_count() const {
  return impl_->plans.size();
}

void BlasContext::set_gemm_autotune(int candidates) {
  impl_->autotune = std::max(0, candidates);
}

int BlasContext::gemm_autotune() const {
  return impl_->autotune;
}

const std::vector<GemmTuneRecord>& BlasContext::tune_records() const {
  return impl_->tune_records;
}

Fp8GemmPath BlasContext::last_fp8_path() const {
  return impl_->last_fp8_path;
}

bool BlasContext::last_bf16_gemv() const {
  return impl_->last_bf16_gemv;
}

template <typename T>
static void ensure_impl(DeviceBuffer<T>& buf, size_t count, cudaStream_t stream) {
  if (buf.size() >= count) return;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  WS_CUDA_CHECK(cudaStreamIsCapturing(stream, &cap));
  WS_CUDA_REQUIRE(cap == cudaStreamCaptureStatusNone,
                  "gemm_fp8_block: scratch of " + std::to_string(buf.size()) +
                      " elements too small (" + std::to_string(count) +
                      " needed) during CUDA graph capture; call "
                      "BlasContext::reserve_fp8_scratch with the largest shape before capturing");
  // The old buffer may still be read by queued work.
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  buf = DeviceBuffer<T>();
  buf = DeviceBuffer<T>(count);
}

void ensure_scratch(DeviceBuffer<char>& buf, size_t count, cudaStream_t stream) {
  ensure_impl(buf, count, stream);
}

void ensure_scratch(DeviceBuffer<__nv_bfloat16>& buf, size_t count, cudaStream_t stream) {
  ensure_impl(buf, count, stream);
}

void BlasContext::reserve_fp8_scratch(int64_t m, int64_t n, int64_t k) {
  WS_CUDA_REQUIRE(m >= 0 && n > 0 && k > 0, "reserve_fp8_scratch: bad shape");
  Fp8GemmPath path = fp8_path_ == Fp8GemmPath::kAuto ? select_fp8_block_path(m, n, k) : fp8_path_;
  // The small-M and GEMV kernels need no scratch.
  if (path == Fp8GemmPath::kSmallM || path == Fp8GemmPath::kGemv) return;
  if (path == Fp8GemmPath::kCublasLt) {
    // Worst case: unaligned user scale pointers force staging of both scale tensors.
    GemmFp8BlockParams p{nullptr, reinterpret_cast<const float*>(4),
                         nullptr, reinterpret_cast<const float*>(4),
                         nullptr, m,
                         n,       k};
    ensure_scratch(impl_->stage, plan_fp8_stage(p).bytes, nullptr);
  } else {
    ensure_scratch(impl_->scratch_x, static_cast<size_t>(m * k), nullptr);
    ensure_scratch(impl_->scratch_w, static_cast<size_t>(n * k), nullptr);
  }
}

}  // namespace wideserve::cuda
