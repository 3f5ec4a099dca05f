#include <algorithm>

#include "common/check.h"
#include "common/logging.h"
#include "engine/model_runner.h"
#include "kvcache/mla_kv_storage.h"
#include "kvcache/page_pool.h"
#include "model/deepseek_model.h"

namespace wideserve::engine {
namespace {

class CpuModelRunner : public ModelRunner {
 public:
  CpuModelRunner(std::unique_ptr<model::DeepseekModel> m, int64_t max_total_tokens,
                 int64_t page_size)
      : model_(std::move(m)),
        kv_(model_->config().num_hidden_layers, kvcache::pages_for(max_total_tokens, page_size),
            page_size, model_->config().kv_cache_dim()) {}

  int64_t vocab_size() const override { return model_->config().vocab_size; }
  int64_t num_pages() const override { return kv_.num_pages(); }
  int64_t page_size() const override { return kv_.page_size(); }
  int64_t max_context() const override { return model_->config().max_position_embeddings; }
  std::vector<int32_t> eos_token_ids() const override { return model_->config().eos_token_ids; }
  void forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) override {
    model_->forward(seqs, kv_, logits);
  }
  KvBufferInfo kv_buffer() override {
    return {kv_.data(),      kv_.bytes(),   kv_.num_layers(),
            kv_.slots(),     kv_.row_dim(), static_cast<int64_t>(sizeof(float)),
            kv_.page_size(), "f32"};
  }

 private:
  std::unique_ptr<model::DeepseekModel> model_;
  kvcache::MlaKvStorage kv_;
};

}  // namespace

std::unique_ptr<ModelRunner> make_cpu_model_runner(const std::string& model_path,
                                                   int64_t max_total_tokens, int64_t page_size) {
  auto m = model::DeepseekModel::load(model_path);
  const auto& c = m->config();
  if (max_total_tokens <= 0) {
    // Default pool: 64 Ki tokens, or less so that the float32 pool stays under ~4 GiB.
    const int64_t bytes_per_token = c.num_hidden_layers * c.kv_cache_dim() * 4;
    max_total_tokens = std::clamp<int64_t>((4ll << 30) / bytes_per_token, page_size, 65536);
  }
  WS_LOG_INFO("CPU KV pool: {} tokens in pages of {} ({:.1f} MiB)", max_total_tokens, page_size,
              max_total_tokens * c.num_hidden_layers * c.kv_cache_dim() * 4.0 / (1 << 20));
  return std::make_unique<CpuModelRunner>(std::move(m), max_total_tokens, page_size);
}

}  // namespace wideserve::engine
