#include "backend/cuda/model/cuda_model_runner.h"

#include <algorithm>
#include <mutex>
#include <string>

#include "backend/cuda/common/device_info.h"
#include "backend/cuda/model/cuda_model.h"
#include "common/check.h"
#include "common/logging.h"

namespace wideserve::cuda {
namespace {

class CudaModelRunner : public engine::ModelRunner {
 public:
  CudaModelRunner(std::unique_ptr<CudaModel> m, int64_t context)
      : model_(std::move(m)), context_(context) {}

  int64_t vocab_size() const override { return model_->config().vocab_size; }
  int64_t num_pages() const override { return model_->num_pages(); }
  int64_t page_size() const override { return model_->page_size(); }
  int64_t max_context() const override { return context_; }
  std::vector<int32_t> eos_token_ids() const override { return model_->config().eos_token_ids; }
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) override {
    guarded([&] { model_->forward(seqs, logits); });
  }
  bool supports_device_greedy() const override { return true; }
  void forward_greedy(std::span<const model::SequenceInput> seqs,
                      std::vector<int32_t>* ids) override {
    guarded([&] { model_->forward_greedy(seqs, ids); });
  }
  bool supports_device_sampling() const override { return true; }
  void forward_sample(std::span<const model::SequenceInput> seqs,
                      const engine::DeviceSampleBatch& b, std::vector<int32_t>* ids,
                      std::vector<float>* logprobs) override {
    rows_.clear();
    for (const engine::DeviceSampleRow& r : b.rows)
      rows_.push_back({r.temperature, r.top_p, r.min_p, r.top_k, r.presence, r.frequency,
                       r.repetition, r.seed, r.step});
    SampleInputs in;
    in.rows = rows_;
    in.penalty_offsets = b.penalty_offsets;
    in.penalty_tokens = b.penalty_tokens;
    in.penalty_counts = b.penalty_counts;
    in.banned_offsets = b.banned_offsets;
    in.banned_tokens = b.banned_tokens;
    in.want_logprobs = b.want_logprobs;
    guarded([&] { model_->forward_sample(seqs, in, ids, logprobs); });
  }
  std::string fatal_error() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return fatal_;
  }
  engine::KvBufferInfo kv_buffer() override {
    const auto& c = model_->config();
    engine::KvBufferInfo kv{model_->kv_data(),   model_->kv_bytes(),
                            c.num_hidden_layers, model_->slots_per_layer(),
                            c.kv_cache_dim(),    2,
                            model_->page_size(), "bf16"};
    // The transfer agent's threads copy to or from the pool (cudaMemcpyDefault: either way).
    int dev = 0;
    WS_CUDA_CHECK(cudaGetDevice(&dev));
    kv.device_copy = [dev](void* dst, const void* src, size_t bytes) {
      WS_CUDA_CHECK(cudaSetDevice(dev));
      WS_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
    };
    return kv;
  }

 private:
  // A failed step fails its requests (the engine's rule); a sticky device error (an illegal
  // address) also marks the runner failed for good, so the worker exits instead of failing every
  // later request on a dead context.
  template <class F>
  void guarded(F&& step) {
    try {
      step();
    } catch (...) {
      if (std::string why = lost_device_error(); !why.empty()) {
        WS_LOG_CRITICAL("CUDA device lost: {}", why);
        std::lock_guard<std::mutex> lock(mu_);
        fatal_ = "CUDA device lost: " + why;
      }
      throw;
    }
  }

  std::unique_ptr<CudaModel> model_;
  mutable std::mutex mu_;
  std::string fatal_;                    // guarded by mu_
  std::vector<SamplingRowParams> rows_;  // forward_sample's converted rows (reused)
  int64_t context_;
};

}  // namespace

std::unique_ptr<engine::ModelRunner> make_cuda_model_runner(const CudaRunnerOptions& o) {
  WS_CHECK_CODE(kUnavailable, device_count() > 0, "--device cuda: {}", describe_devices());
  CudaModelOptions mo;
  mo.page_size = o.page_size;
  mo.load_format = o.load_format;
  mo.max_seqs = o.max_running_requests;
  mo.max_step_tokens = o.chunked_prefill_size + o.max_running_requests;
  mo.cuda_graph_max_bs = o.cuda_graph_max_bs;
  if (o.mem_fraction > 0) mo.mem_fraction = o.mem_fraction;
  if (o.max_total_tokens > 0) mo.num_pages = (o.max_total_tokens + o.page_size - 1) / o.page_size;
  auto m = CudaModel::load(o.model_path, mo);
  const int64_t ctx = o.context_length > 0 ? o.context_length : m->config().max_position_embeddings;
  return std::make_unique<CudaModelRunner>(std::move(m), ctx);
}

}  // namespace wideserve::cuda
