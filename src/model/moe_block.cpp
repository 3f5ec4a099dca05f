#include "model/moe_block.h"

#include <cstring>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/ops.h"
#include "common/check.h"
#include "common/thread_pool.h"
#include "moe/router.h"

namespace wideserve::model {

moe::RouterParams router_params(const ModelConfig& c) {
  moe::RouterParams rp;
  rp.scoring = c.scoring_func;
  rp.method = c.topk_method;
  rp.num_experts = static_cast<int32_t>(c.n_routed_experts);
  rp.top_k = static_cast<int32_t>(c.num_experts_per_tok);
  rp.n_group = static_cast<int32_t>(c.n_group);
  rp.topk_group = static_cast<int32_t>(c.topk_group);
  rp.norm_topk_prob = c.norm_topk_prob;
  rp.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  return rp;
}

void run_experts(const float* x, int64_t top_k, const std::vector<int64_t>& count,
                 const std::vector<int64_t>& order, const float* weights, int64_t H, int64_t I,
                 const std::function<const float*(int64_t)>& gate_up,
                 const std::function<const float*(int64_t)>& down, float* slot_out) {
  const int64_t E = static_cast<int64_t>(count.size()) - 1;
  parallel_for(E, 1, [&](size_t eb, size_t ee) {
    std::vector<float> xe, gu, act, ye;
    for (size_t e = eb; e < ee; ++e) {
      const int64_t n = count[e + 1] - count[e];
      if (n == 0) continue;
      xe.resize(n * H);
      gu.resize(n * 2 * I);
      act.resize(n * I);
      ye.resize(n * H);
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(&xe[j * H], x + (order[count[e] + j] / top_k) * H, H * sizeof(float));
      cpu::linear(xe.data(), gate_up(static_cast<int64_t>(e)), gu.data(), n, 2 * I, H);
      cpu::silu_mul(gu.data(), act.data(), n, I);
      cpu::linear(act.data(), down(static_cast<int64_t>(e)), ye.data(), n, H, I);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t slot = order[count[e] + j];
        const float wt = weights[slot];
        float* dst = &slot_out[slot * H];
        for (int64_t i = 0; i < H; ++i) dst[i] = ye[j * H + i] * wt;
      }
    }
  });
}

void mlp_forward(const MlpWeights& w, const float* x, float* out, int64_t rows) {
  const int64_t inter = w.gate_up.out / 2;
  std::vector<float> gu(rows * 2 * inter), act(rows * inter);
  cpu::linear(x, w.gate_up.w.data(), gu.data(), rows, 2 * inter, w.gate_up.in);
  cpu::silu_mul(gu.data(), act.data(), rows, inter);
  cpu::linear(act.data(), w.down.w.data(), out, rows, w.down.out, inter);
}

void moe_forward(const ModelConfig& c, const MoeWeights& w, const float* x, float* out,
                 int64_t rows) {
  WS_CHECK(!w.gate_up.empty(), "routed experts were released to EP ranks; forward needs EpMoe");
  const int64_t H = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok,
                I = c.moe_intermediate_size;
  std::vector<float> logits(rows * E);
  cpu::linear(x, w.router.data(), logits.data(), rows, E, H);
  const moe::RouterParams rp = router_params(c);
  std::vector<int32_t> ids(rows * K);
  std::vector<float> wts(rows * K);
  moe::route_tokens(rp, logits.data(), w.router_bias.empty() ? nullptr : w.router_bias.data(), rows,
                    ids.data(), wts.data());
  // Sort (token, slot) pairs by expert so that each expert runs one GEMM over its tokens.
  std::vector<int64_t> count(E + 1, 0);
  for (int64_t i = 0; i < rows * K; ++i) ++count[ids[i] + 1];
  for (int64_t e = 0; e < E; ++e) count[e + 1] += count[e];
  std::vector<int64_t> order(rows * K), fill(count.begin(), count.end() - 1);
  for (int64_t i = 0; i < rows * K; ++i) order[fill[ids[i]]++] = i;
  // Expert outputs per (token, slot), combined afterwards in a fixed order: deterministic.
  std::vector<float> slot_out(rows * K * H);
  run_experts(
      x, K, count, order, wts.data(), H, I,
      [&](int64_t e) { return w.gate_up.data() + e * 2 * I * H; },
      [&](int64_t e) { return w.down.data() + e * H * I; }, slot_out.data());
  if (w.has_shared) {
    mlp_forward(w.shared, x, out, rows);
  } else {
    std::memset(out, 0, rows * H * sizeof(float));
  }
  parallel_for(rows, 8, [&](size_t b, size_t e) {
    std::vector<float> acc(H);
    for (size_t t = b; t < e; ++t) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k = 0; k < K; ++k) {
        const float* src = &slot_out[(t * K + k) * H];
        for (int64_t i = 0; i < H; ++i) acc[i] += src[i];
      }
      float* o = out + t * H;
      for (int64_t i = 0; i < H; ++i) o[i] = acc[i] + o[i];
    }
  });
}

}  // namespace wideserve::model
