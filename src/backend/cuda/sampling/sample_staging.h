// One step's sampling inputs on the device for launch_sample: uploaded once per step, then used
// for every LM-head chunk of logits rows; buffers grow as needed and are reused across steps.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/sampling/sampling.h"

namespace wideserve::cuda {

// Host inputs of a sampled step: one SamplingRowParams per logits row and CSR lists (offsets
// [rows + 1], or empty for none) as SampleParams describes them.
struct SampleInputs {
  std::span<const SamplingRowParams> rows;
  std::span<const int32_t> penalty_offsets, penalty_tokens, penalty_counts;
  std::span<const int32_t> banned_offsets, banned_tokens;
  bool want_logprobs = false;
};

class SampleStaging {
 public:
  // Copies the inputs to the device on `stream` (checks the CSR shapes and token ranges).
  void upload(const SampleInputs& in, int64_t vocab, cudaStream_t stream);
  // Samples the staged rows [r0, r0 + n), whose logits are the [n, vocab] rows at `logits`.
  void sample(float* logits, int64_t r0, int64_t n, int64_t vocab, cudaStream_t stream);
  // Copies the ids (and logprobs when asked at upload) of every staged row to the host; waits.
  void download(std::vector<int32_t>* ids, std::vector<float>* logprobs, cudaStream_t stream);

 private:
  int64_t rows_ = 0;
  bool penalties_ = false, bans_ = false, logprobs_ = false;
  int64_t pen_n_ = 0, ban_n_ = 0;
  std::vector<int32_t> host_ints_;
  DeviceBuffer<SamplingRowParams> params_;
  // Packed: penalty offsets, tokens, counts, then ban offsets, tokens.
  DeviceBuffer<int32_t> ints_;
  DeviceBuffer<float> scratch_, logprob_;
  DeviceBuffer<int32_t> ids_;
};

}  // namespace wideserve::cuda
