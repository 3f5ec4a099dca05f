// What the engine needs from a model: one forward step over sequences whose KV lives in pages the
// engine allocates. The CPU runner wraps DeepseekModel; the GPU runner comes with the GPU issue.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/forward_batch.h"

namespace wideserve::engine {

// The KV pool's memory as one buffer of [layers][slots][row_dim] elements, slot = page *
// page_size + offset: what a transfer agent registers and a peer writes into.
struct KvBufferInfo {
  void* base = nullptr;
  size_t bytes = 0;
  int64_t num_layers = 0;
  int64_t slots = 0;
  int64_t row_dim = 0;
  int64_t elem_bytes = 0;
  int64_t page_size = 0;
  std::string dtype;  // "f32" on the CPU backend
  // Set when base is GPU memory (the CUDA backend): copies bytes to or from it (either way), so
  // the KV transfer agent can stage the pool through host memory.
  std::function<void(void* dst, const void* src, size_t bytes)> device_copy;
};

// forward_sample's per-row settings (engine::SamplingParams plus the row's random stream).
struct DeviceSampleRow {
  float temperature = 0.0f;  // < 1e-5: argmax
  float top_p = 1.0f;
  float min_p = 0.0f;
  int32_t top_k = -1;
  float presence = 0.0f;
  float frequency = 0.0f;
  float repetition = 1.0f;
  uint64_t seed = 0;
  uint64_t step = 0;  // SamplerState::num_generated(): which uniform of the seed's stream
};

// What forward_sample draws with, one entry per logits row; lists are CSR with offsets [rows + 1].
struct DeviceSampleBatch {
  std::vector<DeviceSampleRow> rows;
  // Distinct prompt and generated tokens with their generated counts (0: prompt only), only for
  // rows with a penalty; a token appears once per row.
  std::vector<int32_t> penalty_offsets, penalty_tokens, penalty_counts;
  std::vector<int32_t> banned_offsets, banned_tokens;  // never drawn (EOS/stop before min tokens)
  bool want_logprobs = false;                          // fill the chosen tokens' raw logprobs
};

// A model bound to its KV storage of num_pages() pages of page_size() tokens.
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t num_pages() const = 0;
  virtual int64_t page_size() const = 0;
  virtual int64_t max_context() const = 0;
  virtual std::vector<int32_t> eos_token_ids() const = 0;
  // Logits [sum over seqs of (all_logits ? n : 1), vocab] for the step.
  virtual void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) = 0;
  // The KV pool's memory (disaggregation).
  virtual KvBufferInfo kv_buffer() = 0;
  // Why the runner can no longer serve (its device failed for good), else empty. Any thread.
  virtual std::string fatal_error() const { return {}; }
  // Whether forward_greedy runs (argmax on the device: no logits cross to the host).
  virtual bool supports_device_greedy() const { return false; }
  // The step's argmax token per logits row (same rows as forward's).
  virtual void forward_greedy(std::span<const model::SequenceInput> seqs,
                              std::vector<int32_t>* ids) {
    throw std::logic_error("forward_greedy is not supported by this runner");
  }
  // Whether forward_sample runs (the CPU sampler's rules on the device, no logits to the host).
  virtual bool supports_device_sampling() const { return false; }
  // The step's sampled token per logits row (-1 where every token is banned or -inf) and, with
  // b.want_logprobs, each chosen token's logprob under the raw distribution (as sample() reports).
  virtual void forward_sample(std::span<const model::SequenceInput> seqs,
                              const DeviceSampleBatch& b, std::vector<int32_t>* ids,
                              std::vector<float>* logprobs) {
    throw std::logic_error("forward_sample is not supported by this runner");
  }
};

// DeepseekModel on the CPU backend with a float32 latent KV pool of max_total_tokens tokens.
std::unique_ptr<ModelRunner> make_cpu_model_runner(const std::string& model_path,
                                                   int64_t max_total_tokens, int64_t page_size);

}  // namespace wideserve::engine
