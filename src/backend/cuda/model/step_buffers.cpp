#include "backend/cuda/model/step_buffers.h"

#include <algorithm>
#include <vector>

#include "backend/cuda/common/kernel_trace.h"
#include "backend/cuda/model/cuda_model.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_small.h"
#include "backend/cuda/ops/ops.h"
#include "common/check.h"

namespace wideserve::cuda {

using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

namespace {
int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

template <typename T>
DeviceBuffer<T> alloc(int64_t n, size_t* bytes) {
  DeviceBuffer<T> d(static_cast<size_t>(std::max<int64_t>(n, 1)));
  *bytes += d.bytes();
  return d;
}
}  // namespace

StepBuffers::~StepBuffers() {
  if (host_meta_) cudaFreeHost(host_meta_);
  if (host_ids_) cudaFreeHost(host_ids_);
  if (fork_) cudaEventDestroy(fork_);
  if (join_) cudaEventDestroy(join_);
}

void StepBuffers::set_shared_branch(cudaStream_t stream, BlasContext* blas) {
  WS_CHECK_ARG(stream == nullptr || blas != nullptr, "shared-expert branch needs a BLAS context");
  branch_stream_ = stream;
  branch_blas_ = blas;
  if (stream != nullptr && fork_ == nullptr) {
    WS_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
    WS_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
  }
}

void StepBuffers::allocate(const model::ModelConfig& c, const CudaModelOptions& o,
                           int64_t logits_rows) {
  const int64_t T = o.max_step_tokens, H = c.hidden_size, nh = c.num_attention_heads;
  const int64_t row = c.kv_cache_dim(), lat = c.kv_lora_rank;
  const int64_t shared_inter = c.moe_intermediate_size * std::max<int64_t>(c.n_shared_experts, 1);
  const int64_t inter = std::max({c.intermediate_size, shared_inter, c.moe_intermediate_size});
  max_tokens_ = T;
  moe_path_ = o.moe_path;
  grouped_fp8_ = o.moe_grouped_fp8;
  moe_small_ = o.moe_small;
  router_route_ = o.moe_router_route;
  fuse_ops_ = o.fuse_ops;
  max_seqs_ = o.max_seqs;
  max_pages_ = ceil_div(std::max<int64_t>(c.max_position_embeddings, 1), o.page_size);
  max_k_ = std::max({H, c.q_lora_rank, nh * c.v_head_dim, inter});
  h = alloc<float>(T * H, &bytes);
  xn = alloc<bf16>(T * H, &bytes);
  // q_a's output, or [q_a | kv_a] rows when the two are one GEMM (fuse_qkv_a).
  qa = alloc<bf16>(T * (c.q_lora_rank > 0 ? c.q_lora_rank + row : 0), &bytes);
  qa_n = alloc<bf16>(T * c.q_lora_rank, &bytes);
  q = alloc<bf16>(T * nh * c.qk_head_dim(), &bytes);
  kva = alloc<bf16>(T * row, &bytes);
  q_abs = alloc<bf16>(T * nh * row, &bytes);
  o_lat = alloc<bf16>(T * nh * lat, &bytes);
  attn = alloc<bf16>(T * nh * c.v_head_dim, &bytes);
  tmp = alloc<bf16>(T * H, &bytes);
  gu = alloc<bf16>(T * 2 * inter, &bytes);
  act = alloc<bf16>(T * inter, &bytes);
  logits = alloc<float>(logits_rows * c.vocab_size, &bytes);
  ids = alloc<int32_t>(T, &bytes);
  xq_ = alloc<fp8>(T * max_k_, &bytes);
  xs_ = alloc<float>(ceil_div(max_k_, 128) * T, &bytes);
  if (c.n_routed_experts > 0) {
    const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok, I = c.moe_intermediate_size;
    const int64_t R = T * K;
    top_k_ = K;
    experts_ = E;
    router_logits_ = alloc<float>(T * E, &bytes);
    topk_w_ = alloc<float>(T * K, &bytes);
    topk_ids_ = alloc<int32_t>(T * K, &bytes);
    counts_ = alloc<int32_t>(E, &bytes);
    offsets_ = alloc<int32_t>(E + 1, &bytes);
    sorted_to_slot_ = alloc<int32_t>(R, &bytes);
    slot_to_sorted_ = alloc<int32_t>(R, &bytes);
    align_ws_ = alloc<uint8_t>(static_cast<int64_t>(moe_align_workspace_bytes(T, K, E)), &bytes);
    gg_ws_ = alloc<uint8_t>(static_cast<int64_t>(grouped_gemm_workspace_bytes(E)), &bytes);
    sorted_ = alloc<bf16>(R * H, &bytes);
    sorted_q_ = alloc<fp8>(R * H, &bytes);
    sorted_scales_ = alloc<float>(R * ceil_div(H, 128), &bytes);
    gu_sorted_ = alloc<bf16>(R * 2 * I, &bytes);
    act_sorted_ = alloc<bf16>(R * I, &bytes);
    act_sorted_q_ = alloc<fp8>(R * I, &bytes);
    act_scales_ = alloc<float>(R * ceil_div(I, 128), &bytes);
    y_sorted_ = alloc<bf16>(R * H, &bytes);
    shared_out_ = alloc<bf16>(T * H, &bytes);
    small_act_ = alloc<float>(static_cast<int64_t>(moe_small_act_floats(
                                  std::min(T, kMoeSmallModelTokens), K, c.n_shared_experts, I)),
                              &bytes);
  }
  meta_cap_ = 6 * T + 2 * o.max_seqs + std::max(o.max_seqs, T) * max_pages_;
  WS_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_meta_), meta_cap_ * 4));
  WS_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_ids_), ids.size() * 4));
  meta_ = alloc<int32_t>(meta_cap_, &bytes);
}

StepMeta StepBuffers::stage(const model::ModelConfig& c, std::span<const model::SequenceInput> seqs,
                            int64_t page_size, int64_t num_pages, cudaStream_t st) {
  StepMeta m;
  m.seqs = static_cast<int64_t>(seqs.size());
  WS_CHECK_ARG(m.seqs <= max_seqs_, "step has {} sequences, the GPU model was sized for {}", m.seqs,
               max_seqs_);
  m.decode_only = true;
  for (const auto& s : seqs) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    WS_CHECK_ARG(s.start_pos >= 0, "negative start position");
    WS_CHECK_ARG(static_cast<int64_t>(s.pages.size()) * page_size >= s.start_pos + n,
                 "page table holds {} tokens, needs {}", s.pages.size() * page_size,
                 s.start_pos + n);
    m.tokens += n;
    m.max_pages = std::max<int64_t>(m.max_pages, static_cast<int64_t>(s.pages.size()));
    m.max_seq_len = std::max(m.max_seq_len, s.start_pos + n);
    if (n != 1) m.decode_only = false;
    if (n > 0) m.logit_rows += s.all_logits ? n : 1;
  }
  WS_CHECK_ARG(m.tokens <= max_tokens_, "step has {} tokens, the GPU model was sized for {}",
               m.tokens, max_tokens_);
  WS_CHECK_ARG(m.max_pages <= max_pages_, "page table of {} pages exceeds the context bound {}",
               m.max_pages, max_pages_);
  m.max_pages = std::max<int64_t>(m.max_pages, 1);
  const int64_t T = m.tokens, S = m.seqs;
  int32_t* tok = host_meta_;
  int32_t* pos = tok + T;
  int32_t* slot = pos + T;
  int32_t* tseq = slot + T;
  int32_t* lrows = tseq + T;
  int32_t* lens = lrows + T;
  int32_t* table = lens + S;
  int64_t r = 0, lr = 0;
  for (int64_t s = 0; s < S; ++s) {
    const auto& sq = seqs[s];
    const int64_t n = static_cast<int64_t>(sq.tokens.size());
    for (int32_t p : sq.pages)
      WS_CHECK_ARG(p >= 0 && p < num_pages, "page {} outside the KV pool", p);
    for (int64_t i = 0; i < n; ++i, ++r) {
      WS_CHECK_ARG(sq.tokens[i] >= 0 && sq.tokens[i] < c.vocab_size,
                   "token id {} outside vocabulary [0, {})", sq.tokens[i], c.vocab_size);
      const int64_t p = sq.start_pos + i;
      tok[r] = sq.tokens[i];
      pos[r] = static_cast<int32_t>(p);
      slot[r] = static_cast<int32_t>(sq.pages[p / page_size] * page_size + p % page_size);
      tseq[r] = static_cast<int32_t>(s);
      if (sq.all_logits || i == n - 1) lrows[lr++] = static_cast<int32_t>(r);
    }
    lens[s] = static_cast<int32_t>(sq.start_pos + n);
    for (int64_t j = 0; j < m.max_pages; ++j)
      table[s * m.max_pages + j] = j < static_cast<int64_t>(sq.pages.size()) ? sq.pages[j] : 0;
  }
  const int64_t total = 5 * T + S + S * m.max_pages;
  WS_CUDA_CHECK(cudaMemcpyAsync(meta_.get(), host_meta_, total * 4, cudaMemcpyHostToDevice, st));
  const int32_t* d = meta_.get();
  m.d_tokens = d;
  m.d_positions = d + T;
  m.d_slots = d + 2 * T;
  m.d_token_seq = d + 3 * T;
  m.d_logit_rows = d + 4 * T;
  m.d_seq_lens = d + 5 * T;
  m.d_page_table = d + 5 * T + S;
  return m;
}

StepMeta StepBuffers::stage_padded(const model::ModelConfig& c,
                                   std::span<const model::SequenceInput> seqs, int64_t page_size,
                                   int64_t num_pages, int64_t bucket, int32_t dummy_page,
                                   cudaStream_t st) {
  const int64_t S = static_cast<int64_t>(seqs.size()), P = max_pages_, Bp = bucket;
  WS_CHECK(S <= Bp && Bp <= max_seqs_ && Bp <= max_tokens_, "bad graph bucket {} for {} rows", Bp,
           S);
  int32_t* tok = host_meta_;
  int32_t* pos = tok + Bp;
  int32_t* slot = pos + Bp;
  int32_t* tseq = slot + Bp;
  int32_t* lrows = tseq + Bp;
  int32_t* lens = lrows + Bp;
  int32_t* table = lens + Bp;
  int64_t used = 1;
  for (int64_t s = 0; s < Bp; ++s) {
    tseq[s] = static_cast<int32_t>(s);
    lrows[s] = static_cast<int32_t>(s);
    if (s >= S) {  // padding row: one token at position 0 of the dummy page
      tok[s] = 0;
      pos[s] = 0;
      slot[s] = static_cast<int32_t>(dummy_page * page_size);
      lens[s] = 1;
      table[s * P] = dummy_page;
      continue;
    }
    const auto& sq = seqs[s];
    WS_CHECK_ARG(sq.tokens.size() == 1 && !sq.all_logits, "graph steps are single-token decodes");
    WS_CHECK_ARG(sq.start_pos >= 0, "negative start position");
    const int64_t p = sq.start_pos, np = static_cast<int64_t>(sq.pages.size());
    WS_CHECK_ARG(np * page_size >= p + 1 && np <= P, "page table holds {} tokens, needs {}",
                 np * page_size, p + 1);
    WS_CHECK_ARG(sq.tokens[0] >= 0 && sq.tokens[0] < c.vocab_size,
                 "token id {} outside vocabulary [0, {})", sq.tokens[0], c.vocab_size);
    for (int32_t pg : sq.pages)
      WS_CHECK_ARG(pg >= 0 && pg < num_pages, "page {} outside the KV pool", pg);
    tok[s] = sq.tokens[0];
    pos[s] = static_cast<int32_t>(p);
    slot[s] = static_cast<int32_t>(sq.pages[p / page_size] * page_size + p % page_size);
    lens[s] = static_cast<int32_t>(p + 1);
    std::copy(sq.pages.begin(), sq.pages.end(), table + s * P);
    used = std::max(used, np);
  }
  // One copy up to the last row's used columns: each copy costs a few microseconds of latency,
  // more than the unused columns of the rows before it (at most (Bp - 1) x P ints) take.
  WS_CUDA_CHECK(cudaMemcpyAsync(meta_.get(), host_meta_, (6 * Bp + (Bp - 1) * P + used) * 4,
                                cudaMemcpyHostToDevice, st));
  StepMeta m;
  m.tokens = m.seqs = m.logit_rows = Bp;
  m.max_pages = P;
  m.max_seq_len = P * page_size;
  m.decode_only = true;
  const int32_t* d = meta_.get();
  m.d_tokens = d;
  m.d_positions = d + Bp;
  m.d_slots = d + 2 * Bp;
  m.d_token_seq = d + 3 * Bp;
  m.d_logit_rows = d + 4 * Bp;
  m.d_seq_lens = d + 5 * Bp;
  m.d_page_table = d + 6 * Bp;
  return m;
}

void StepBuffers::linear(BlasContext& blas, const DevLinear& l, const bf16* x, int64_t m, bf16* y,
                         cudaStream_t st, bool x_quantized) {
  if (m == 0) return;
  if (l.fp8) {
    gemm_fp8_block(blas, fp8_operands(l, x, m, y, x_quantized, st), st);
    return;
  }
  GemmBf16Params g{x, l.w.get(), y, m, l.out, l.in};
  gemm_bf16(blas, g, st);
}

GemmFp8BlockParams StepBuffers::fp8_operands(const DevLinear& l, const bf16* x, int64_t m, bf16* y,
                                             bool x_quantized, cudaStream_t st) {
  if (!x_quantized) launch_quantize_fp8(QuantizeFp8Params{x, m, l.in, 0, xq_.get(), xs_.get()}, st);
  return {xq_.get(), xs_.get(), l.q.get(), l.scale.get(), y, m, l.out, l.in};
}

bool StepBuffers::norm(RmsNormParams p, bool quantize, cudaStream_t st) {
  // The fused copy is what launch_quantize_fp8 makes of p.out in the FP8 linear's layout.
  quantize =
      quantize && fuse_ops_ && p.rows <= max_tokens_ && p.dim <= max_k_ && p.out_stride == p.dim;
  if (quantize) {
    p.q = xq_.get();
    p.q_scale = xs_.get();
  }
  launch_rms_norm(p, st);
  return quantize;
}

void StepBuffers::linear_residual(BlasContext& blas, const DevLinear& l, const bf16* x, int64_t m,
                                  cudaStream_t st, bool x_quantized, const bf16** deferred,
                                  bool h_final) {
  if (deferred != nullptr) *deferred = nullptr;
  if (m == 0) return;
  if (l.fp8) {
    GemmFp8BlockParams g = fp8_operands(l, x, m, tmp.get(), x_quantized, st);
    if (fuse_ops_ && deferred != nullptr) {  // the next norm adds tmp into h
      gemm_fp8_block(blas, g, st);
      *deferred = tmp.get();
      return;
    }
    // Fused: the GEMV adds into h in its epilogue (the other paths write tmp, then add it).
    if (fuse_ops_) g.residual = h.get();
    gemm_fp8_block(blas, g, st);
    if (!fuse_ops_) launch_add_residual({tmp.get(), h.get(), m, l.out}, st);
    return;
  }
  GemmBf16Params g{x, l.w.get(), h.get(), m, l.out, l.in};
  g.y_f32 = true;
  g.beta = 1.f;
  g.y_final = h_final;
  gemm_bf16(blas, g, st);
}

void StepBuffers::mlp(BlasContext& blas, const DevLinear& gate_up, const DevLinear& down,
                      const bf16* x, int64_t m, bf16* out, cudaStream_t st, bool x_quantized,
                      const bf16** deferred) {
  if (deferred != nullptr) *deferred = nullptr;
  const int64_t inter = gate_up.out / 2;
  linear(blas, gate_up, x, m, gu.get(), st, x_quantized);
  // Trace builds only: when the shared-expert branch's gate_up (a cuBLASLt kernel) finished.
  if (st == branch_stream_) kernel_trace_stamp(st, 1);
  // Fused: an FP8 down projection gets its quantized input from the SiLU kernel (the bytes
  // launch_quantize_fp8 would make of act), one launch and one read of act fewer.
  SiluMulParams sp{gu.get(), act.get(), m, inter, xq_.get(), xs_.get()};
  const bool quantized = fuse_ops_ && down.fp8 && down.in == inter && m <= max_tokens_ &&
                         inter <= max_k_ && silu_mul_fp8_supported(sp);
  if (!quantized) {
    sp.q = nullptr;
    sp.q_scale = nullptr;
  }
  launch_silu_mul(sp, st);
  if (out == nullptr)
    linear_residual(blas, down, act.get(), m, st, quantized, deferred);
  else
    linear(blas, down, act.get(), m, out, st, quantized);
}

void StepBuffers::moe(BlasContext& blas, const model::ModelConfig& c, const DevLayer& L, bf16* x,
                      int64_t m, cudaStream_t st, const GemvRmsNorm* norm) {
  const int64_t H = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok,
                I = c.moe_intermediate_size, R = m * K;
  const DevExperts& X = L.experts;
  // A few tokens: the fused path (routing, then two launches), when the shapes allow it.
  MoeSmallParams sp{};
  const bool small = moe_small_ && m <= kMoeSmallModelTokens;
  if (small) {
    sp.x = x;
    sp.topk_ids = topk_ids_.get();
    sp.topk_weights = topk_w_.get();
    sp.num_tokens = m;
    sp.top_k = K;
    sp.hidden = H;
    sp.inter = I;
    sp.num_experts = E;
    sp.fp8 = X.fp8;
    sp.gate_up = X.fp8 ? static_cast<const void*>(X.gate_up_q.get()) : X.gate_up.get();
    sp.gate_up_scale = X.gate_up_scale.get();
    sp.down = X.fp8 ? static_cast<const void*>(X.down_q.get()) : X.down.get();
    sp.down_scale = X.down_scale.get();
    if (L.has_shared) {
      sp.num_shared = L.gate_up.out / 2 / I;
      sp.shared_gate_up =
          L.gate_up.fp8 ? static_cast<const void*>(L.gate_up.q.get()) : L.gate_up.w.get();
      sp.shared_gate_up_scale = L.gate_up.scale.get();
      sp.shared_down = L.down.fp8 ? static_cast<const void*>(L.down.q.get()) : L.down.w.get();
      sp.shared_down_scale = L.down.scale.get();
    }
    sp.act = small_act_.get();
    sp.residual = h.get();
  }
  MoeRoutingParams rp;
  rp.logits = router_logits_.get();
  rp.bias = L.router_bias.size() > 0 ? L.router_bias.get() : nullptr;
  rp.num_tokens = m;
  rp.num_experts = E;
  rp.top_k = K;
  rp.n_group = c.n_group;
  rp.topk_group = c.topk_group;
  rp.scoring = c.scoring_func == moe::ScoringFunc::kSigmoid ? 1 : 0;
  rp.topk_method = c.topk_method == moe::TopkMethod::kNoauxTc              ? 2
                   : c.topk_method == moe::TopkMethod::kGroupLimitedGreedy ? 1
                                                                           : 0;
  rp.renormalize = c.norm_topk_prob;
  rp.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  rp.topk_ids = topk_ids_.get();
  rp.topk_weights = topk_w_.get();
  // The shared MLP must be stored like the experts and be whole slices of width I.
  const bool fused = small &&
                     (!L.has_shared || (L.gate_up.fp8 == X.fp8 && L.down.fp8 == X.fp8 &&
                                        sp.num_shared * I * 2 == L.gate_up.out &&
                                        sp.num_shared <= c.n_shared_experts)) &&
                     moe_small_unsupported(sp).empty();
  MoeRouterRouteInputs ri{x, L.router.get(), H, router_logits_.get()};
  const bool router_route = router_route_ && moe_path_ == MoePath::kAuto &&
                            moe_router_route_preferred(E, H) &&
                            moe_router_route_unsupported(rp, ri).empty();
  // One token, BF16 experts: the router + routing and up launches normalise h themselves.
  bool norm_inside = false;
  if (norm != nullptr && fused && m == 1 && !X.fp8 && router_route) {
    MoeSmallParams q = sp;
    q.x_norm_src = norm->src;
    q.x_norm_w = norm->w;
    q.x_norm_eps = norm->eps;
    MoeRouterRouteInputs r = ri;
    r.norm_src = norm->src;
    r.norm_w = norm->w;
    r.norm_eps = norm->eps;
    norm_inside = moe_small_unsupported(q).empty() && moe_router_route_unsupported(rp, r).empty();
    if (norm_inside) {
      sp = q;
      ri = r;
    }
  }
  if (norm != nullptr && !norm_inside)
    launch_rms_norm({nullptr, norm->src, nullptr, norm->w, x, m, H, H, H, norm->eps}, st);
  if (L.has_shared && !fused) mlp(blas, L.gate_up, L.down, x, m, shared_out_.get(), st);
  // The shared experts need only x: on the branch they run while the router, routing and the
  // routed up launch do (those few launches leave most of the GPU idle); the down launch adds
  // their bf16 output as the grouped path's combine does. With the norm inside (one BF16 token)
  // they are units of the up launch instead, which runs them first and unwaited; with a norm
  // launch units only tie with the branch at one token and lose at two (docs/perf.md, session 20).
  const bool branch = fused && L.has_shared && branch_stream_ != nullptr && !norm_inside;
  if (branch) {
    sp.num_shared = 0;
    sp.shared_gate_up = sp.shared_down = nullptr;
    sp.shared_gate_up_scale = sp.shared_down_scale = nullptr;
    sp.shared_out = shared_out_.get();
    WS_CUDA_CHECK(cudaEventRecord(fork_, st));
    WS_CUDA_CHECK(cudaStreamWaitEvent(branch_stream_, fork_));
    mlp(*branch_blas_, L.gate_up, L.down, x, m, shared_out_.get(), branch_stream_);
    WS_CUDA_CHECK(cudaEventRecord(join_, branch_stream_));
  }
  // A few tokens: the router GEMV and the routing in one launch (moe.h), else the two.
  if (router_route) {
    launch_moe_router_route(rp, ri, st);
  } else {
    GemmBf16Params g{x, L.router.get(), router_logits_.get(), m, E, H};
    g.y_f32 = true;
    gemm_bf16(blas, g, st);
    launch_moe_routing_path(rp, moe_path_, st);
  }
  if (fused) {
    launch_moe_small_up(sp, st);
    if (branch) WS_CUDA_CHECK(cudaStreamWaitEvent(st, join_));
    launch_moe_small_down(sp, st);
    return;
  }
  MoeAlignParams ap{};
  ap.topk_ids = topk_ids_.get();
  ap.num_tokens = m;
  ap.top_k = K;
  ap.num_experts = E;
  ap.expert_counts = counts_.get();
  ap.expert_offsets = offsets_.get();
  ap.sorted_to_slot = sorted_to_slot_.get();
  ap.slot_to_sorted = slot_to_sorted_.get();
  ap.workspace = align_ws_.get();
  launch_moe_align_path(ap, moe_path_, st);
  const int32_t* num_rows = offsets_.get() + E;
  MoeGatherParams gp{};
  gp.x = x;
  gp.sorted_to_slot = sorted_to_slot_.get();
  gp.num_rows = num_rows;
  gp.num_tokens = m;
  gp.top_k = K;
  gp.hidden = H;
  gp.max_rows = R;
  if (X.fp8) {
    gp.out_fp8 = sorted_q_.get();
    gp.out_scales = sorted_scales_.get();
  } else {
    gp.out_bf16 = sorted_.get();
  }
  launch_moe_gather(gp, st);
  // One grouped GEMM over the sorted rows: FP8 (rows quantized with per-row 1x128 scales) or
  // BF16, by how the experts are stored.
  auto grouped = [&](const void* a_bf16, const void* a_fp8, const float* a_scales,
                     const void* b_bf16, const void* b_fp8, const float* b_scales, int64_t n,
                     int64_t k, bf16* d) {
    GroupedGemmParams gg{};
    gg.expert_offsets = offsets_.get();
    gg.num_experts = E;
    gg.max_rows = R;
    gg.workspace = gg_ws_.get();
    gg.n = n;
    gg.k = k;
    gg.d = d;
    gg.routed_rows = m * K;
    gg.fp8_kernel = grouped_fp8_;
    if (X.fp8) {
      gg.a = a_fp8;
      gg.a_scales = a_scales;
      gg.b = b_fp8;
      gg.b_scales = b_scales;
      launch_grouped_gemm_fp8(gg, st);
    } else {
      gg.a = a_bf16;
      gg.b = b_bf16;
      launch_grouped_gemm_bf16(gg, st);
    }
  };
  grouped(sorted_.get(), sorted_q_.get(), sorted_scales_.get(), X.gate_up.get(), X.gate_up_q.get(),
          X.gate_up_scale.get(), 2 * I, H, gu_sorted_.get());
  SiluAndMulParams sm{};
  sm.x = gu_sorted_.get();
  sm.rows = R;
  sm.inter = I;
  sm.num_rows = num_rows;
  if (X.fp8) {
    sm.out_fp8 = act_sorted_q_.get();
    sm.out_scales = act_scales_.get();
  } else {
    sm.out_bf16 = act_sorted_.get();
  }
  launch_silu_and_mul(sm, st);
  grouped(act_sorted_.get(), act_sorted_q_.get(), act_scales_.get(), X.down.get(), X.down_q.get(),
          X.down_scale.get(), H, I, y_sorted_.get());
  MoeCombineParams cp{};
  cp.y = y_sorted_.get();
  cp.slot_to_sorted = slot_to_sorted_.get();
  cp.topk_weights = topk_w_.get();
  cp.shared = L.has_shared ? shared_out_.get() : nullptr;
  cp.num_tokens = m;
  cp.top_k = K;
  cp.hidden = H;
  cp.out = tmp.get();
  launch_moe_combine(cp, st);
  launch_add_residual({tmp.get(), h.get(), m, H}, st);
}

void* StepBuffers::mla_workspace(size_t need) {
  if (need == 0) return nullptr;
  if (mla_ws_.size() < need) {
    mla_ws_ = DeviceBuffer<uint8_t>();
    mla_ws_ = DeviceBuffer<uint8_t>(need);
  }
  return mla_ws_.get();
}

}  // namespace wideserve::cuda
