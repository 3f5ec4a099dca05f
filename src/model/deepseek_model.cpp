#include "model/deepseek_model.h"

#include <cstring>

#include "backend/cpu/gemm.h"
#include "backend/cpu/ops.h"
#include "common/check.h"
#include "common/thread_pool.h"
#include "model/checkpoint.h"
#include "model/ep_moe.h"
#include "model/mla_attention.h"
#include "model/moe_block.h"
#include "model/vocab_parallel_head.h"

namespace wideserve::model {

DeepseekModel::DeepseekModel(ModelConfig cfg, ModelWeights weights)
    : cfg_(std::move(cfg)), w_(std::move(weights)), rope_(cfg_) {}

std::unique_ptr<DeepseekModel> DeepseekModel::load(const std::string& model_dir) {
  ModelConfig cfg = load_model_config(model_dir);
  Checkpoint ckpt(model_dir, cfg.fp8_block_rows, cfg.fp8_block_cols);
  ModelWeights w = load_weights(ckpt, cfg);
  return std::make_unique<DeepseekModel>(std::move(cfg), std::move(w));
}

void DeepseekModel::release_routed_experts() {
  for (auto& L : w_.layers) {
    std::vector<float>().swap(L.moe.gate_up);
    std::vector<float>().swap(L.moe.down);
  }
}

void DeepseekModel::forward(std::span<const SequenceInput> seqs, kvcache::MlaKvStorage& kv,
                            std::vector<float>* logits, const ForwardOptions& opts) const {
  const int64_t H = cfg_.hidden_size, V = cfg_.vocab_size;
  WS_CHECK(kv.row_dim() == cfg_.kv_cache_dim() && kv.num_layers() == cfg_.num_hidden_layers,
           "KV storage shape does not match the model");
  // Row layout: sequences back to back.
  std::vector<int64_t> seq_rows(seqs.size() + 1, 0), positions;
  std::vector<int32_t> tokens;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto& sq = seqs[s];
    const int64_t n = static_cast<int64_t>(sq.tokens.size());
    WS_CHECK_ARG(sq.start_pos >= 0, "negative start position");
    WS_CHECK_ARG(static_cast<int64_t>(sq.pages.size()) * kv.page_size() >= sq.start_pos + n,
                 "sequence {}: page table holds {} tokens, needs {}", s,
                 sq.pages.size() * kv.page_size(), sq.start_pos + n);
    for (int64_t i = 0; i < n; ++i) {
      WS_CHECK_ARG(sq.tokens[i] >= 0 && sq.tokens[i] < V, "token id {} outside vocabulary [0, {})",
                   sq.tokens[i], V);
      tokens.push_back(sq.tokens[i]);
      positions.push_back(sq.start_pos + i);
    }
    for (int32_t p : sq.pages)
      WS_CHECK_ARG(p >= 0 && p < kv.num_pages(), "page {} outside the KV pool", p);
    seq_rows[s + 1] = seq_rows[s] + n;
  }
  const int64_t rows = seq_rows.back();
  if (opts.ep && !opts.ep_begun) {
    bool decode_only = true;
    for (const auto& sq : seqs) decode_only = decode_only && sq.tokens.size() <= 1;
    opts.ep->begin_forward(rows, decode_only);
  }
  std::vector<float> h(rows * H), xn(rows * H), tmp(rows * H);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(&h[r * H], &w_.embed[static_cast<int64_t>(tokens[r]) * H], H * sizeof(float));
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    cpu::rms_norm(h.data(), L.input_norm.data(), eps, xn.data(), rows, H, H, H);
    mla_attention(cfg_, rope_, L.attn, l, seqs, seq_rows, positions, xn.data(), tmp.data(), kv,
                  opts.attention);
    cpu::add_inplace(h.data(), tmp.data(), rows * H);
    cpu::rms_norm(h.data(), L.post_attention_norm.data(), eps, xn.data(), rows, H, H, H);
    if (L.is_moe && opts.ep)
      opts.ep->run(l, L.moe, xn.data(), tmp.data(), rows);
    else if (L.is_moe)
      moe_forward(cfg_, L.moe, xn.data(), tmp.data(), rows);
    else
      mlp_forward(L.mlp, xn.data(), tmp.data(), rows);
    cpu::add_inplace(h.data(), tmp.data(), rows * H);
  }
  // Only the rows whose logits are wanted go through the final norm and LM head.
  std::vector<int64_t> out_rows;
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (seq_rows[s + 1] == seq_rows[s]) continue;
    if (seqs[s].all_logits)
      for (int64_t r = seq_rows[s]; r < seq_rows[s + 1]; ++r) out_rows.push_back(r);
    else
      out_rows.push_back(seq_rows[s + 1] - 1);
  }
  const int64_t m = static_cast<int64_t>(out_rows.size());
  std::vector<float> sel(m * H);
  for (int64_t i = 0; i < m; ++i) std::memcpy(&sel[i * H], &h[out_rows[i] * H], H * sizeof(float));
  cpu::rms_norm(sel.data(), w_.final_norm.data(), eps, sel.data(), m, H, H, H);
  logits->resize(m * V);
  if (opts.ep && opts.ep->options().vocab_parallel_head)
    vocab_parallel_head(opts.ep->group(), w_.lm_head.data(), V, H, sel.data(), m, logits->data());
  else
    cpu::linear(sel.data(), w_.lm_head.data(), logits->data(), m, V, H);
}

}  // namespace wideserve::model
