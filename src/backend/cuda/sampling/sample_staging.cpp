#include "backend/cuda/sampling/sample_staging.h"

#include <algorithm>

#include "common/check.h"

namespace wideserve::cuda {
namespace {

// Grows buf to at least n elements (contents are not kept).
template <typename T>
void ensure(DeviceBuffer<T>& buf, size_t n) {
  if (buf.size() < n) buf = DeviceBuffer<T>(std::max(n, buf.size() * 2));
}

// Checks one CSR list: offsets [rows + 1] from 0, non-decreasing, ending at the list's size, and
// every token inside the vocabulary.
void check_csr(std::span<const int32_t> off, std::span<const int32_t> tokens, int64_t rows,
               int64_t vocab, const char* what) {
  WS_CHECK_ARG(static_cast<int64_t>(off.size()) == rows + 1, "{}: {} offsets for {} rows", what,
               off.size(), rows);
  WS_CHECK_ARG(off.front() == 0 && off.back() == static_cast<int32_t>(tokens.size()),
               "{}: offsets [{}, {}] do not span {} entries", what, off.front(), off.back(),
               tokens.size());
  for (int64_t r = 0; r < rows; ++r)
    WS_CHECK_ARG(off[r] <= off[r + 1], "{}: offsets decrease at row {}", what, r);
  for (int32_t t : tokens)
    WS_CHECK_ARG(t >= 0 && t < vocab, "{}: token {} outside [0, {})", what, t, vocab);
}

}  // namespace

void SampleStaging::upload(const SampleInputs& in, int64_t vocab, cudaStream_t stream) {
  rows_ = static_cast<int64_t>(in.rows.size());
  penalties_ = !in.penalty_offsets.empty() && !in.penalty_tokens.empty();
  bans_ = !in.banned_offsets.empty() && !in.banned_tokens.empty();
  logprobs_ = in.want_logprobs;
  if (rows_ == 0) return;
  host_ints_.clear();
  pen_n_ = ban_n_ = 0;
  if (penalties_) {
    WS_CHECK_ARG(in.penalty_counts.size() == in.penalty_tokens.size(),
                 "penalties: {} counts for {} tokens", in.penalty_counts.size(),
                 in.penalty_tokens.size());
    check_csr(in.penalty_offsets, in.penalty_tokens, rows_, vocab, "penalties");
    pen_n_ = static_cast<int64_t>(in.penalty_tokens.size());
    host_ints_.insert(host_ints_.end(), in.penalty_offsets.begin(), in.penalty_offsets.end());
    host_ints_.insert(host_ints_.end(), in.penalty_tokens.begin(), in.penalty_tokens.end());
    host_ints_.insert(host_ints_.end(), in.penalty_counts.begin(), in.penalty_counts.end());
  }
  if (bans_) {
    check_csr(in.banned_offsets, in.banned_tokens, rows_, vocab, "bans");
    ban_n_ = static_cast<int64_t>(in.banned_tokens.size());
    host_ints_.insert(host_ints_.end(), in.banned_offsets.begin(), in.banned_offsets.end());
    host_ints_.insert(host_ints_.end(), in.banned_tokens.begin(), in.banned_tokens.end());
  }
  ensure(params_, rows_);
  ensure(ids_, rows_);
  if (logprobs_) ensure(logprob_, rows_);
  if (logprobs_ && penalties_) ensure(scratch_, pen_n_);
  // Pageable sources: the copies are staged before cudaMemcpyAsync returns.
  WS_CUDA_CHECK(cudaMemcpyAsync(params_.get(), in.rows.data(), rows_ * sizeof(SamplingRowParams),
                                cudaMemcpyHostToDevice, stream));
  if (!host_ints_.empty()) {
    ensure(ints_, host_ints_.size());
    WS_CUDA_CHECK(cudaMemcpyAsync(ints_.get(), host_ints_.data(),
                                  host_ints_.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                                  stream));
  }
}

void SampleStaging::sample(float* logits, int64_t r0, int64_t n, int64_t vocab,
                           cudaStream_t stream) {
  WS_CHECK(r0 >= 0 && r0 + n <= rows_, "sample rows [{}, {}) outside the {} staged rows", r0,
           r0 + n, rows_);
  SampleParams p;
  p.logits = logits;
  p.rows = n;
  p.vocab = vocab;
  p.params = params_.get() + r0;
  const int32_t* ints = ints_.get();
  if (penalties_) {
    // Offsets index the whole step's token arrays, so a chunk only shifts its offsets.
    p.penalty_offsets = ints + r0;
    p.penalty_tokens = ints + rows_ + 1;
    p.penalty_counts = ints + rows_ + 1 + pen_n_;
    ints += rows_ + 1 + 2 * pen_n_;
    if (logprobs_) p.penalty_scratch = scratch_.get();
  }
  if (bans_) {
    p.banned_offsets = ints + r0;
    p.banned_tokens = ints + rows_ + 1;
  }
  p.out_ids = ids_.get() + r0;
  if (logprobs_) p.out_logprob = logprob_.get() + r0;
  launch_sample(p, stream);
}

void SampleStaging::download(std::vector<int32_t>* ids, std::vector<float>* logprobs,
                             cudaStream_t stream) {
  ids->resize(rows_);
  logprobs->resize(logprobs_ ? rows_ : 0);
  if (rows_ > 0) {
    WS_CUDA_CHECK(cudaMemcpyAsync(ids->data(), ids_.get(), rows_ * sizeof(int32_t),
                                  cudaMemcpyDeviceToHost, stream));
    if (logprobs_)
      WS_CUDA_CHECK(cudaMemcpyAsync(logprobs->data(), logprob_.get(), rows_ * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream));
  }
  WS_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace wideserve::cuda
