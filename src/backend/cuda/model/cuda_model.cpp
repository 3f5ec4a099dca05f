#include "backend/cuda/model/cuda_model.h"

#include <cublas_v2.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/attention/mla_token.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_gemv.h"
#include "backend/cuda/model/step_buffers.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_small.h"
#include "backend/cuda/ops/mla_simple.h"
#include "backend/cuda/ops/ops.h"
#include "common/check.h"
#include "common/logging.h"
#include "model/rope.h"

namespace wideserve::cuda {

using model::ModelConfig;
using bf16 = __nv_bfloat16;

namespace {

constexpr int64_t kNormInGemvMaxTokens = 2;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

void cublas_check(cublasStatus_t st, const char* what) {
  WS_CHECK(st == CUBLAS_STATUS_SUCCESS, "cuBLAS {} failed: {}", what, cublasGetStatusString(st));
}

// C[b] = op(A[b]) B[b] in cuBLAS column-major terms, bf16 in/out, fp32 compute.
void batched_gemm(cublasHandle_t h, bool trans_a, int64_t m, int64_t n, int64_t k, const bf16* a,
                  int64_t lda, int64_t stride_a, const bf16* b, int64_t ldb, int64_t stride_b,
                  bf16* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  const float alpha = 1.f, beta = 0.f;
  cublas_check(cublasGemmStridedBatchedEx(
                   h, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(m),
                   static_cast<int>(n), static_cast<int>(k), &alpha, a, CUDA_R_16BF,
                   static_cast<int>(lda), stride_a, b, CUDA_R_16BF, static_cast<int>(ldb), stride_b,
                   &beta, c, CUDA_R_16BF, static_cast<int>(ldc), stride_c, static_cast<int>(batch),
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "strided batched gemm");
}

}  // namespace

struct CudaModel::Impl {
  cudaStream_t stream = nullptr;
  BlasContext blas;
  cudaStream_t branch_stream = nullptr;  // the small MoE's shared-expert branch
  BlasContext branch_blas;
  cublasHandle_t cublas = nullptr;
  DeviceBuffer<bf16> kv;
  DeviceBuffer<float> inv_freq;
  RopeTable rope{};
  StepBuffers buf;
  int64_t logits_rows_cap = 0;
  std::map<std::pair<int64_t, int64_t>, cudaGraphExec_t> graphs;  // (batch, context) buckets
  DeviceBuffer<uint8_t> graph_ws;   // MLA split workspace of captured graphs (never regrown)
  DeviceBuffer<uint8_t> argmax_ws;  // launch_argmax's split rows (zeroed once, left reusable)
  cudaEvent_t step_events[2] = {nullptr, nullptr};  // set_step_timing: around forward_greedy's work
  ~Impl() {
    for (cudaEvent_t e : step_events)
      if (e) cudaEventDestroy(e);
    for (auto& [k, g] : graphs) cudaGraphExecDestroy(g);
    if (cublas) cublasDestroy(cublas);
    if (stream) cudaStreamDestroy(stream);
    if (branch_stream) cudaStreamDestroy(branch_stream);
  }
};

std::unique_ptr<CudaModel> CudaModel::load(const std::string& model_dir,
                                           const CudaModelOptions& o) {
  ModelConfig cfg = model::load_model_config(model_dir);
  // Dummy weights of an FP8 checkpoint's config are FP8 too (as a real load of it would be).
  const bool fp8 = o.dummy_fp8 || (cfg.fp8_block_rows > 0 && !o.dequantize_fp8);
  DevWeights w = o.load_format == "dummy" ? dummy_dev_weights(cfg, fp8, o.seed)
                                          : load_dev_weights(model_dir, cfg, o.dequantize_fp8);
  return std::make_unique<CudaModel>(std::move(cfg), std::move(w), o);
}

CudaModel::CudaModel(ModelConfig cfg, DevWeights w, const CudaModelOptions& o)
    : cfg_(std::move(cfg)), opts_(o), w_(std::move(w)), impl_(std::make_unique<Impl>()) {
  WS_CHECK_ARG(opts_.page_size > 0, "page size must be positive");
  WS_CHECK_ARG(opts_.max_step_tokens > 0 && opts_.max_seqs > 0, "step sizes must be positive");
  Impl& I = *impl_;
  if (opts_.fuse_qkv_a) fuse_qkv_a(w_);
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&I.stream, cudaStreamNonBlocking));
  cublas_check(cublasCreate(&I.cublas), "create");
  cublas_check(cublasSetStream(I.cublas, I.stream), "set stream");
  model::Rope rope(cfg_);
  I.inv_freq = DeviceBuffer<float>(rope.inv_freq().size());
  I.inv_freq.upload(rope.inv_freq());
  I.rope = {I.inv_freq.get(), rope.dim(), rope.attention_factor()};
  // Both BLAS contexts (main stream, shared-expert branch) pick kernels by the same options.
  auto configure = [&](BlasContext& b) {
    b.set_fp8_path(opts_.fp8_path);
    b.set_fp8_small_m(opts_.fp8_small_m);
    b.set_fp8_gemv(opts_.fp8_gemv);
    b.set_bf16_gemv(opts_.bf16_gemv);
    b.set_gemm_autotune(opts_.gemm_autotune);
  };
  configure(I.blas);
  set_pdl_enabled(opts_.pdl);
  I.logits_rows_cap = std::max<int64_t>(opts_.max_seqs, 64);
  I.buf.allocate(cfg_, opts_, I.logits_rows_cap);
  I.argmax_ws = DeviceBuffer<uint8_t>(argmax_workspace_bytes(I.logits_rows_cap));
  WS_CUDA_CHECK(cudaMemset(I.argmax_ws.get(), 0, I.argmax_ws.bytes()));
  if (opts_.moe_small && opts_.moe_shared_branch && cfg_.n_shared_experts > 0) {
    WS_CUDA_CHECK(cudaStreamCreateWithFlags(&I.branch_stream, cudaStreamNonBlocking));
    configure(I.branch_blas);
    for (const auto& L : w_.layers)
      for (const DevLinear* l : {&L.gate_up, &L.down})
        if (L.is_moe && l->fp8)
          I.branch_blas.reserve_fp8_scratch(kMoeSmallModelTokens, l->out, l->in);
    I.buf.set_shared_branch(I.branch_stream, &I.branch_blas);
  }
  const int64_t row = cfg_.kv_cache_dim();
  num_pages_ = opts_.num_pages;
  if (num_pages_ <= 0) {
    size_t free_b = 0, total_b = 0;
    WS_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const double budget =
        opts_.mem_fraction * static_cast<double>(total_b) - static_cast<double>(total_b - free_b);
    const double per_page = static_cast<double>(cfg_.num_hidden_layers * opts_.page_size * row) * 2;
    num_pages_ = static_cast<int64_t>(budget / per_page);
    WS_CHECK_CODE(kResourceExhausted, num_pages_ > 0,
                  "no GPU memory left for the KV cache: {:.1f} GiB total, {:.1f} GiB free, "
                  "--mem-fraction-static {}",
                  total_b / 1073741824.0, free_b / 1073741824.0, opts_.mem_fraction);
  }
  // One extra page past the pool: padding rows of graph steps write there.
  I.kv = DeviceBuffer<bf16>(cfg_.num_hidden_layers * (num_pages_ + 1) * opts_.page_size * row);
  if (opts_.cuda_graph_max_bs > 0) setup_graphs();
  WS_LOG_INFO(
      "GPU model: {:.2f} GiB weights, KV pool {} pages x {} tokens ({:.2f} GiB), scratch "
      "{:.2f} GiB",
      w_.bytes / 1073741824.0, num_pages_, opts_.page_size, I.kv.bytes() / 1073741824.0,
      I.buf.bytes / 1073741824.0);
}

CudaModel::~CudaModel() = default;

int64_t CudaModel::slots_per_layer() const {
  return (num_pages_ + 1) * opts_.page_size;
}

void CudaModel::setup_graphs() {
  Impl& I = *impl_;
  const int64_t cap = std::min(opts_.cuda_graph_max_bs, opts_.max_seqs);
  for (int64_t b : {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128})
    if (b <= cap) graph_buckets_.push_back(b);
  for (int64_t b = 160; b <= cap; b += 32) graph_buckets_.push_back(b);
  if (graph_buckets_.empty() || graph_buckets_.back() != cap) graph_buckets_.push_back(cap);
  // Everything a captured graph points at is sized now and never regrown. The MLA split
  // workspace is the largest any (batch, context) bucket's plan needs: a smaller batch or context
  // can split more (e.g. 16 heads: batch 96 at context 1024 needs more than batch 160 at any).
  const int64_t max_ctx = I.buf.max_pages() * opts_.page_size;
  if (cfg_.kv_lora_rank == kMlaLatentDim && cfg_.qk_rope_head_dim == kMlaRopeDim) {
    size_t ws = 0;
    for (int64_t b : graph_buckets_)
      for (int64_t ctx : graph_context_buckets(max_ctx))
        ws = std::max(ws, mla_workspace_bytes(b, cfg_.num_attention_heads, ctx));
    if (ws > 0) I.graph_ws = DeviceBuffer<uint8_t>(ws);
  }
  auto reserve = [&](const DevLinear& l) {
    if (l.fp8) I.blas.reserve_fp8_scratch(opts_.max_step_tokens, l.out, l.in);
  };
  for (const auto& L : w_.layers)
    for (const DevLinear* l : {&L.q_a, &L.q_b, &L.q, &L.kv_a, &L.qkv_a, &L.o, &L.gate_up, &L.down})
      reserve(*l);
  WS_LOG_INFO("decode CUDA graphs for batch sizes up to {} ({} buckets, MLA workspace {:.1f} MiB)",
              cap, graph_buckets_.size(), I.graph_ws.bytes() / 1048576.0);
}

size_t CudaModel::kv_bytes() const {
  return impl_->kv.bytes();
}
void* CudaModel::kv_data() const {
  return impl_->kv.get();
}

int64_t CudaModel::run(std::span<const model::SequenceInput> seqs) {
  Impl& I = *impl_;
  const StepMeta meta = I.buf.stage(cfg_, seqs, opts_.page_size, num_pages_, I.stream);
  if (meta.tokens == 0) return 0;
  layers(meta, nullptr);
  return meta.logit_rows;
}

void CudaModel::layers(const StepMeta& meta, const DeviceBuffer<uint8_t>* graph_ws) {
  Impl& I = *impl_;
  StepBuffers& B = I.buf;
  const ModelConfig& c = cfg_;
  cudaStream_t st = I.stream;
  const int64_t T = meta.tokens;
  const int64_t H = c.hidden_size, nh = c.num_attention_heads, nope = c.qk_nope_head_dim,
                rd = c.qk_rope_head_dim, vd = c.v_head_dim, qk = c.qk_head_dim(),
                lat = c.kv_lora_rank, row = c.kv_cache_dim();
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t slots = slots_per_layer();

  launch_embedding({meta.d_tokens, w_.embed.get(), nullptr, B.h.get(), T, H, c.vocab_size}, st);
  // A linear's result that the next norm of h adds into it (StepBuffers::linear_residual).
  const bf16* pending = nullptr;
  auto norm_h = [&](const bf16* w, bool quantize) {
    RmsNormParams p{nullptr, B.h.get(), nullptr, w, B.xn.get(), T, H, H, H, eps};
    p.add = std::exchange(pending, nullptr);
    return B.norm(p, quantize, st);
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const DevLayer& L = w_.layers[l];
    bf16* cache = I.kv.get() + l * slots * row;
    // --- attention ---
    const DevLinear& q_in = L.qkv_a.out > 0 ? L.qkv_a : c.q_lora_rank > 0 ? L.q_a : L.q;
    // No q LoRA, BF16: q and kv_a in one GEMV launch at decode sizes, which can also make the
    // input RMSNorm of h while staging it (bit-identical to the norm launch it replaces). Each
    // CTA then normalises every row itself: at 4 rows that cost as much as the launch it saves
    // (V2-Lite batch 4, H200: 5.20 vs 5.16 ms), so only up to kNormInGemvMaxTokens.
    const bool qkv_pair = c.q_lora_rank == 0 && opts_.fuse_ops && !L.q.fp8 && !L.kv_a.fp8;
    const GemmBf16Params qg{B.xn.get(), L.q.w.get(), B.q.get(), T, L.q.out, L.q.in};
    const GemmBf16Params kg{B.xn.get(), L.kv_a.w.get(), B.kva.get(), T, L.kv_a.out, L.kv_a.in};
    const GemvRmsNorm in_norm{B.h.get(), L.input_norm.get(), eps};
    const bool norm_in_pair = qkv_pair && opts_.norm_in_gemv && pending == nullptr &&
                              I.blas.bf16_gemv() && T <= kNormInGemvMaxTokens &&
                              gemv_rms_norm_unsupported(in_norm, H).empty() &&
                              bf16_gemv_pair_unsupported(qg, kg).empty();
    const bool xq = norm_in_pair ? false : norm_h(L.input_norm.get(), q_in.fp8);
    const bf16* kv_a = B.kva.get();
    int64_t kv_a_stride = 0;
    if (c.q_lora_rank > 0) {
      // Stacked (fuse_qkv_a): one GEMM writes rows [q_a | kv_a], normed and read in place.
      const bool stacked = L.qkv_a.out > 0;
      const int64_t ql = c.q_lora_rank, qa_ld = stacked ? L.qkv_a.out : ql;
      B.linear(I.blas, stacked ? L.qkv_a : L.q_a, B.xn.get(), T, B.qa.get(), st, xq);
      const bool qaq = B.norm(
          {nullptr, nullptr, B.qa.get(), L.q_a_norm.get(), B.qa_n.get(), T, ql, qa_ld, ql, eps},
          L.q_b.fp8, st);
      B.linear(I.blas, L.q_b, B.qa_n.get(), T, B.q.get(), st, qaq);
      if (stacked) {
        kv_a = B.qa.get() + ql;
        kv_a_stride = qa_ld;
      } else {
        // kv_a reads xn again: its FP8 copy was overwritten by q_a_norm's.
        B.linear(I.blas, L.kv_a, B.xn.get(), T, B.kva.get(), st);
      }
    } else if (norm_in_pair) {
      launch_bf16_gemv_pair_normed(qg, kg, in_norm, GemvConfig{}, st);
    } else if (qkv_pair) {
      gemm_bf16_pair(I.blas, qg, kg, st);  // both read xn: one GEMV launch at decode sizes
    } else {
      B.linear(I.blas, L.q, B.xn.get(), T, B.q.get(), st, xq);
      B.linear(I.blas, L.kv_a, B.xn.get(), T, B.kva.get(), st, xq);
    }
    // One token: its whole attention core (latent and query rope, absorbed query, attention,
    // W_UV) in one clustered launch, with every weight and cache read issued before its wait.
    MlaTokenParams tp;
    tp.q = B.q.get();
    tp.kv_a = kv_a;
    tp.kv_a_norm = L.kv_a_norm.get();
    tp.w_kv_b = L.kv_b.get();
    tp.rope = I.rope;
    tp.position = meta.d_positions;
    tp.slot = meta.d_slots;
    tp.page_table = meta.d_page_table;
    tp.seq_len = meta.d_seq_lens;
    tp.kv_cache = cache;
    tp.out = B.attn.get();
    tp.heads = nh;
    tp.q_stride = qk;
    tp.nope = nope;
    tp.v_dim = vd;
    tp.page_size = opts_.page_size;
    tp.slots = slots;
    tp.eps = eps;
    tp.softmax_scale = static_cast<float>(c.attention_scale());
    tp.cluster = opts_.mla_token_cluster;
    tp.row_copies = opts_.mla_token_row_copies;
    if (opts_.mla_token_stamps != nullptr)
      tp.stamps = opts_.mla_token_stamps + l * mla_token_grid(tp) * kMlaTokenStamps;
    const bool token_core = opts_.mla_token && T == 1 && meta.decode_only && lat == kMlaLatentDim &&
                            mla_token_preferred(nh, meta.max_seq_len) &&
                            mla_token_unsupported(tp).empty();
    if (token_core)
      launch_mla_token(tp, st);
    else {
      const LatentPrepParams lp{
          kv_a, L.kv_a_norm.get(), meta.d_positions, meta.d_slots, cache, I.rope, T, lat, slots,
          eps,  kv_a_stride};
      const QueryRopeParams qp{
          B.q.get(), B.q_abs.get(), meta.d_positions, I.rope, T, nh, qk, nope, row, lat};
      if (opts_.fuse_ops)
        launch_mla_rope_prep(lp, qp, st);  // the query tail is disjoint from the absorbed part
      else
        launch_latent_prep(lp, st);
      // Absorbed query: q_nope . W_UK per head, then the roped tail.
      batched_gemm(I.cublas, false, lat, T, nope, L.kv_b.get(), lat, (nope + vd) * lat, B.q.get(),
                   nh * qk, qk, B.q_abs.get(), nh * row, row, nh);
      if (!opts_.fuse_ops) launch_query_rope(qp, st);
      if (lat == kMlaLatentDim && rd == kMlaRopeDim) {
        MlaAttentionParams ap;
        ap.q = B.q_abs.get();
        ap.kv_cache = cache;
        ap.page_table = meta.d_page_table;
        ap.seq_lens = meta.d_seq_lens;
        ap.token_seq = meta.d_token_seq;
        ap.token_pos = meta.d_positions;
        ap.out = B.o_lat.get();
        ap.num_tokens = T;
        ap.num_seqs = meta.seqs;
        ap.num_heads = nh;
        ap.max_pages_per_seq = meta.max_pages;
        ap.page_size = opts_.page_size;
        ap.softmax_scale = static_cast<float>(c.attention_scale());
        ap.max_seq_len = meta.max_seq_len;
        ap.workspace_bytes = mla_workspace_bytes(T, nh, meta.max_seq_len);
        if (graph_ws != nullptr) {
          // A captured graph keeps this pointer: never the regrowable eager buffer, and the
          // kernels check the plan's need against the buffer's real size.
          ap.workspace = graph_ws->bytes() > 0 ? graph_ws->get() : nullptr;
          ap.workspace_bytes = graph_ws->bytes();
        } else {
          ap.workspace = B.mla_workspace(ap.workspace_bytes);
        }
        if (meta.decode_only)
          launch_mla_decode(ap, st, opts_.mla_decode);
        else
          launch_mla_prefill(ap, st);
      } else {
        launch_mla_simple({B.q_abs.get(), cache, meta.d_page_table, meta.d_token_seq,
                           meta.d_positions, B.o_lat.get(), T, nh, lat, rd, meta.max_pages,
                           opts_.page_size, static_cast<float>(c.attention_scale())},
                          st);
      }
      // Per-head W_UV on the latent output (one GEMV launch at decode sizes), then o_proj into the
      // residual stream.
      const GemvHeadsParams uv{
          B.o_lat.get(), L.kv_b.get() + nope * lat, B.attn.get(), T, nh, vd, lat, nh * lat, lat,
          lat,           (nope + vd) * lat,         nh * vd};
      if (opts_.fuse_ops && I.blas.bf16_gemv() && bf16_gemv_heads_unsupported(uv).empty())
        launch_bf16_gemv_heads(uv, GemvConfig{}, st);
      else
        batched_gemm(I.cublas, true, vd, T, lat, L.kv_b.get() + nope * lat, lat, (nope + vd) * lat,
                     B.o_lat.get(), nh * lat, lat, B.attn.get(), nh * vd, vd, nh);
    }
    // o_proj into h. After the one launch, h's last writer comes before the q/kv GEMV (two or
    // more launches back), so a BF16 GEMV reads h's old rows before its wait.
    B.linear_residual(I.blas, L.o, B.attn.get(), T, st, false, &pending,
                      token_core && opts_.o_proj_early_residual);
    // --- MLP / MoE ---
    if (L.is_moe && opts_.moe_norm_inside && pending == nullptr) {
      // The post-attention norm goes to StepBuffers::moe, which lets its launches make it at
      // one token (one launch fewer in the chain) or launches it.
      const GemvRmsNorm post{B.h.get(), L.post_attention_norm.get(), eps};
      B.moe(I.blas, c, L, B.xn.get(), T, st, &post);
      continue;
    }
    const bool mq = norm_h(L.post_attention_norm.get(), !L.is_moe && L.gate_up.fp8);
    if (!L.is_moe) {
      B.mlp(I.blas, L.gate_up, L.down, B.xn.get(), T, nullptr, st, mq, &pending);
      continue;
    }
    B.moe(I.blas, c, L, B.xn.get(), T, st);
  }
  // Final norm of the rows that want logits (a pending update reaches only those rows of h; h
  // is not read again in this step).
  RmsNormParams fin{meta.d_logit_rows,
                    B.h.get(),
                    nullptr,
                    w_.final_norm.get(),
                    B.xn.get(),
                    meta.logit_rows,
                    H,
                    H,
                    H,
                    eps};
  fin.add = pending;
  launch_rms_norm(fin, st);
}

void CudaModel::head_greedy(int64_t m) {
  Impl& I = *impl_;
  const int64_t V = cfg_.vocab_size, H = cfg_.hidden_size;
  for (int64_t r0 = 0; r0 < m; r0 += I.logits_rows_cap) {
    const int64_t n = std::min(I.logits_rows_cap, m - r0);
    GemmBf16Params g{I.buf.xn.get() + r0 * H, w_.lm_head.get(), I.buf.logits.get(), n, V, H};
    g.y_f32 = true;
    gemm_bf16(I.blas, g, I.stream);
    launch_argmax(
        {I.buf.logits.get(), I.buf.ids.get() + r0, n, V, I.argmax_ws.get(), I.argmax_ws.bytes()},
        I.stream);
  }
}

std::vector<int64_t> graph_context_buckets(int64_t max_ctx) {
  std::vector<int64_t> out;
  for (int64_t c = 1024; c < max_ctx; c *= 2) out.push_back(c);
  out.push_back(max_ctx);
  return out;
}

size_t CudaModel::graph_workspace_bytes() const {
  return impl_->graph_ws.bytes();
}

const std::vector<GemmTuneRecord>& CudaModel::gemm_tune_records() const {
  return impl_->blas.tune_records();
}

int64_t CudaModel::graph_bucket(int64_t n) const {
  for (int64_t b : graph_buckets_)
    if (b >= n) return b;
  return -1;
}

bool CudaModel::graph_step(std::span<const model::SequenceInput> seqs) {
  Impl& I = *impl_;
  if (graph_buckets_.empty() || seqs.empty()) return false;
  const int64_t bucket = graph_bucket(static_cast<int64_t>(seqs.size()));
  if (bucket < 0) return false;
  int64_t longest = 0;
  for (const auto& s : seqs) {
    if (s.tokens.size() != 1 || s.all_logits) return false;
    longest = std::max(longest, s.start_pos + 1);
  }
  // Context bucket: the attention split plan depends on the host-known length bound.
  int64_t ctx = -1;
  for (int64_t c : graph_context_buckets(I.buf.max_pages() * opts_.page_size))
    if (c >= longest) {
      ctx = c;
      break;
    }
  if (ctx < 0) return false;
  StepMeta meta = I.buf.stage_padded(cfg_, seqs, opts_.page_size, num_pages_, bucket,
                                     static_cast<int32_t>(num_pages_), I.stream);
  meta.max_seq_len = ctx;
  const auto key = std::make_pair(bucket, ctx);
  auto it = I.graphs.find(key);
  if (it == I.graphs.end()) {
    // Warm up eagerly (plans, scratch), then capture the same work.
    layers(meta, &I.graph_ws);
    head_greedy(bucket);
    WS_CUDA_CHECK(cudaStreamSynchronize(I.stream));
    cudaGraph_t g = nullptr;
    WS_CUDA_CHECK(cudaStreamBeginCapture(I.stream, cudaStreamCaptureModeThreadLocal));
    try {
      layers(meta, &I.graph_ws);
      head_greedy(bucket);
    } catch (...) {
      cudaStreamEndCapture(I.stream, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    WS_CUDA_CHECK(cudaStreamEndCapture(I.stream, &g));
    cudaGraphExec_t exec = nullptr;
    WS_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    cudaGraphDestroy(g);
    it = I.graphs.emplace(key, exec).first;
    WS_LOG_DEBUG("captured decode CUDA graph: batch {}, context {}", bucket, ctx);
  }
  WS_CUDA_CHECK(cudaGraphLaunch(it->second, I.stream));
  return true;
}

void CudaModel::forward(std::span<const model::SequenceInput> seqs, std::vector<float>* logits) {
  Impl& I = *impl_;
  const int64_t m = run(seqs), V = cfg_.vocab_size, H = cfg_.hidden_size;
  logits->resize(m * V);
  for (int64_t r0 = 0; r0 < m; r0 += I.logits_rows_cap) {
    const int64_t n = std::min(I.logits_rows_cap, m - r0);
    GemmBf16Params g{I.buf.xn.get() + r0 * H, w_.lm_head.get(), I.buf.logits.get(), n, V, H};
    g.y_f32 = true;
    gemm_bf16(I.blas, g, I.stream);
    WS_CUDA_CHECK(cudaMemcpyAsync(logits->data() + r0 * V, I.buf.logits.get(),
                                  n * V * sizeof(float), cudaMemcpyDeviceToHost, I.stream));
  }
  WS_CUDA_CHECK(cudaStreamSynchronize(I.stream));
}

void CudaModel::forward_greedy(std::span<const model::SequenceInput> seqs,
                               std::vector<int32_t>* ids) {
  Impl& I = *impl_;
  if (I.step_events[0]) WS_CUDA_CHECK(cudaEventRecord(I.step_events[0], I.stream));
  int64_t m = 0;
  if (graph_step(seqs)) {
    m = static_cast<int64_t>(seqs.size());
  } else {
    m = run(seqs);
    head_greedy(m);
  }
  if (I.step_events[1]) WS_CUDA_CHECK(cudaEventRecord(I.step_events[1], I.stream));
  if (m > 0)
    WS_CUDA_CHECK(cudaMemcpyAsync(I.buf.host_ids(), I.buf.ids.get(), m * sizeof(int32_t),
                                  cudaMemcpyDeviceToHost, I.stream));
  WS_CUDA_CHECK(cudaStreamSynchronize(I.stream));
  ids->assign(I.buf.host_ids(), I.buf.host_ids() + m);
}

void CudaModel::set_step_timing(bool on) {
  Impl& I = *impl_;
  for (cudaEvent_t& e : I.step_events) {
    if (on && !e) WS_CUDA_CHECK(cudaEventCreate(&e));
    if (!on && e) {
      cudaEventDestroy(e);
      e = nullptr;
    }
  }
}

double CudaModel::last_step_device_ms() const {
  const Impl& I = *impl_;
  WS_CHECK(I.step_events[0] != nullptr, "set_step_timing(true) first");
  float ms = 0.f;
  WS_CUDA_CHECK(cudaEventElapsedTime(&ms, I.step_events[0], I.step_events[1]));
  return ms;
}

void CudaModel::forward_sample(std::span<const model::SequenceInput> seqs, const SampleInputs& in,
                               std::vector<int32_t>* ids, std::vector<float>* logprobs) {
  Impl& I = *impl_;
  if (!sampling_) sampling_ = std::make_unique<SampleStaging>();
  const int64_t V = cfg_.vocab_size, H = cfg_.hidden_size;
  sampling_->upload(in, V, I.stream);  // checks the lists before the step runs
  const int64_t m = run(seqs);
  WS_CHECK_ARG(static_cast<int64_t>(in.rows.size()) == m,
               "forward_sample: {} sampling rows for {} logits rows", in.rows.size(), m);
  for (int64_t r0 = 0; r0 < m; r0 += I.logits_rows_cap) {
    const int64_t n = std::min(I.logits_rows_cap, m - r0);
    GemmBf16Params g{I.buf.xn.get() + r0 * H, w_.lm_head.get(), I.buf.logits.get(), n, V, H};
    g.y_f32 = true;
    gemm_bf16(I.blas, g, I.stream);
    sampling_->sample(I.buf.logits.get(), r0, n, V, I.stream);
  }
  sampling_->download(ids, logprobs, I.stream);
}

}  // namespace wideserve::cuda
