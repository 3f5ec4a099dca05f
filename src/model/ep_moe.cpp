#include "model/ep_moe.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/gemm.h"
#include "backend/cpu/ops.h"
#include "common/check.h"
#include "common/logging.h"
#include "common/thread_pool.h"
#include "model/moe_block.h"
#include "moe/router.h"

namespace wideserve::model {

EpMoe::EpMoe(const ModelConfig& cfg, const ModelWeights& full, dist::ProcessGroup& pg,
             const EpOptions& opts)
    : cfg_(cfg), pg_(pg), opts_(opts) {
  const int32_t E = static_cast<int32_t>(cfg.n_routed_experts);
  int32_t L = 0;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l)
    moe_index_.push_back(cfg.is_moe_layer(l) ? L++ : -1);
  WS_CHECK_ARG(L > 0, "expert parallelism needs a MoE model ({} has no MoE layer)",
               cfg.architecture);
  WS_CHECK_ARG(opts.num_redundant_experts >= 0, "--ep-num-redundant-experts must be >= 0");
  const int32_t P = E + opts.num_redundant_experts;
  WS_CHECK_ARG(P % pg.size() == 0,
               "{} routed experts + {} redundant = {} physical experts are not divisible by {} "
               "ranks",
               E, opts.num_redundant_experts, P, pg.size());
  placement_ = opts.init_expert_location == "trivial"
                   ? moe::trivial_placement(L, E, P, pg.size())
                   : moe::load_placement(opts.init_expert_location, L, E, P, pg.size());
  const int64_t H = cfg.hidden_size, I = cfg.moe_intermediate_size;
  const int32_t local = placement_.local_count(), first = placement_.first_local(pg.rank());
  gate_up_.assign(L, std::vector<std::vector<float>>(local));
  down_.assign(L, std::vector<std::vector<float>>(local));
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    const int32_t m = moe_index_[l];
    if (m < 0) continue;
    const MoeWeights& w = full.layers[l].moe;
    WS_CHECK(!w.gate_up.empty(), "EP: the full expert weights of layer {} are gone", l);
    for (int32_t s = 0; s < local; ++s) {
      const int64_t e = placement_.phy2log[m][first + s];
      gate_up_[m][s].assign(w.gate_up.begin() + e * 2 * I * H,
                            w.gate_up.begin() + (e + 1) * 2 * I * H);
      down_[m][s].assign(w.down.begin() + e * H * I, w.down.begin() + (e + 1) * H * I);
    }
  }
  dispatcher_ =
      std::make_unique<moe::EpDispatcher>(pg, H, static_cast<int32_t>(cfg.num_experts_per_tok),
                                          local, opts.max_dispatch_tokens_per_rank);
  loads_.assign(L, std::vector<double>(E, 0.0));
  slot_tokens_.assign(L, 0);
}

int32_t EpMoe::moe_index(int64_t layer) const {
  WS_CHECK(layer >= 0 && layer < static_cast<int64_t>(moe_index_.size()) && moe_index_[layer] >= 0,
           "EP: layer {} is not a MoE layer", layer);
  return moe_index_[layer];
}

bool EpMoe::begin_forward(int64_t rows, bool decode_only, bool active) {
  const int n = pg_.size();
  int64_t mine[3] = {rows, rows > 0 && !decode_only ? 1 : 0, active ? 1 : 0};
  std::vector<int64_t> all(3 * n);
  pg_.all_gather(mine, sizeof(mine), all.data());
  bool any_prefill = false, any_active = false;
  for (int r = 0; r < n; ++r) {
    any_prefill = any_prefill || all[3 * r + 1] != 0;
    any_active = any_active || all[3 * r + 2] != 0;
  }
  if (!any_active) return false;
  if (opts_.rebalance_every > 0 && forwards_ > 0 && forwards_ % opts_.rebalance_every == 0)
    rebalance();
  switch (opts_.deepep_mode) {
    case moe::DeepepMode::kNormal:
      mode_ = moe::DispatchMode::kNormal;
      break;
    case moe::DeepepMode::kLowLatency:
      mode_ = moe::DispatchMode::kLowLatency;
      break;
    case moe::DeepepMode::kAuto:
      mode_ = any_prefill ? moe::DispatchMode::kNormal : moe::DispatchMode::kLowLatency;
      break;
  }
  ++forwards_;
  ++metric_forwards_;
  return true;
}

void EpMoe::run(int64_t layer, const MoeWeights& w, const float* x, float* out, int64_t rows) {
  const int32_t m = moe_index(layer);
  const int64_t H = cfg_.hidden_size, E = cfg_.n_routed_experts, K = cfg_.num_experts_per_tok,
                I = cfg_.moe_intermediate_size;
  // 1. Gate and top-k on the owning rank (same rule as moe_forward).
  std::vector<int32_t> ids(rows * K), phys(rows * K);
  std::vector<float> wts(rows * K);
  if (rows > 0) {
    std::vector<float> logits(rows * E);
    cpu::linear(x, w.router.data(), logits.data(), rows, E, H);
    const moe::RouterParams rp = router_params(cfg_);
    moe::route_tokens(rp, logits.data(), w.router_bias.empty() ? nullptr : w.router_bias.data(),
                      rows, ids.data(), wts.data());
  }
  // 2. Logical -> physical replica; loads for EPLB.
  for (int64_t i = 0; i < rows * K; ++i) {
    loads_[m][ids[i]] += 1.0;
    const uint64_t key = (static_cast<uint64_t>(forwards_) << 24) ^ static_cast<uint64_t>(i);
    phys[i] = moe::choose_replica(placement_, m, ids[i], pg_.rank(), key, opts_.dispatch);
  }
  // 3. Dispatch.
  dispatcher_->dispatch(mode_, x, rows, phys.data(), wts.data());
  const int64_t n = dispatcher_->num_received();
  const float* rx = dispatcher_->received_x();
  const int32_t* re = dispatcher_->received_expert();
  const float* rw = dispatcher_->received_weight();
  // 4. Local experts over their received (token, slot) pairs, grouped by expert.
  const int32_t local = placement_.local_count();
  std::vector<int64_t> count(local + 1, 0);
  for (int64_t i = 0; i < n * K; ++i)
    if (re[i] >= 0) ++count[re[i] + 1];
  for (int32_t e = 0; e < local; ++e) count[e + 1] += count[e];
  slot_tokens_[m] += count[local];
  std::vector<int64_t> order(count[local]), fill(count.begin(), count.end() - 1);
  for (int64_t i = 0; i < n * K; ++i)
    if (re[i] >= 0) order[fill[re[i]]++] = i;
  std::vector<float> slot_out(n * K * H, 0.0f);
  run_experts(
      rx, K, count, order, rw, H, I, [&](int64_t e) { return gate_up_[m][e].data(); },
      [&](int64_t e) { return down_[m][e].data(); }, slot_out.data());
  // Weighted sum per received token over its local slots, in slot order (as moe_forward).
  std::vector<float> y(n * H, 0.0f);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < K; ++k) {
      if (re[j * K + k] < 0) continue;
      const float* src = &slot_out[(j * K + k) * H];
      float* dst = &y[j * H];
      for (int64_t i = 0; i < H; ++i) dst[i] += src[i];
    }
  // 5. Combine back, then add the shared experts (local, data parallel).
  dispatcher_->combine(y.data(), out);
  if (w.has_shared && rows > 0) {
    std::vector<float> sh(rows * H);
    mlp_forward(w.shared, x, sh.data(), rows);
    for (int64_t i = 0; i < rows * H; ++i) out[i] = out[i] + sh[i];
  }
}

void EpMoe::rebalance() {
  const int32_t L = placement_.num_layers(), E = placement_.num_logical,
                P = placement_.num_physical, local = placement_.local_count();
  const int me = pg_.rank(), n = pg_.size();
  std::vector<double> flat;
  for (const auto& l : loads_) flat.insert(flat.end(), l.begin(), l.end());
  dist::all_reduce_sum(pg_, std::span<double>(flat));
  std::vector<std::vector<double>> loads(L, std::vector<double>(E));
  for (int32_t l = 0; l < L; ++l)
    std::copy(flat.begin() + l * E, flat.begin() + (l + 1) * E, loads[l].begin());
  // Same inputs on every rank -> the same placement everywhere.
  moe::ExpertPlacement next = moe::eplb_placement(
      loads, P, n, opts_.num_nodes, static_cast<int32_t>(cfg_.n_group), opts_.eplb_algorithm);
  const int64_t H = cfg_.hidden_size, I = cfg_.moe_intermediate_size;
  const int64_t gu_n = 2 * I * H, dn_n = H * I, per = (gu_n + dn_n) * 4;
  // Source of every new slot: this rank if it already holds the expert, else the rank of the
  // expert's first old replica. Every rank computes the same plan.
  auto source = [&](int32_t l, int32_t slot, int32_t* old_local) {
    const int dst = next.rank_of(slot);
    const int32_t e = next.phy2log[l][slot];
    for (int32_t s : placement_.log2phy[l][e])
      if (placement_.rank_of(s) == dst) {
        *old_local = s - placement_.first_local(dst);
        return dst;
      }
    const int32_t s0 = placement_.log2phy[l][e][0];
    *old_local = s0 - placement_.first_local(placement_.rank_of(s0));
    return placement_.rank_of(s0);
  };
  std::vector<std::vector<char>> send(n);
  for (int32_t l = 0; l < L; ++l)
    for (int32_t slot = 0; slot < P; ++slot) {
      int32_t ol;
      const int src = source(l, slot, &ol);
      const int dst = next.rank_of(slot);
      if (src != me || dst == me) continue;
      auto& b = send[dst];
      const size_t off = b.size();
      b.resize(off + per);
      std::memcpy(b.data() + off, gate_up_[l][ol].data(), gu_n * 4);
      std::memcpy(b.data() + off + gu_n * 4, down_[l][ol].data(), dn_n * 4);
    }
  auto got = dist::exchange_blobs(pg_, send);
  std::vector<size_t> read(n, 0);
  std::vector<std::vector<std::vector<float>>> ngu(L, std::vector<std::vector<float>>(local)),
      ndn(L, std::vector<std::vector<float>>(local));
  int64_t moved = 0;
  for (int32_t l = 0; l < L; ++l)
    for (int32_t s = 0; s < local; ++s) {
      const int32_t slot = next.first_local(me) + s;
      int32_t ol;
      const int src = source(l, slot, &ol);
      if (src == me) {
        ngu[l][s] = gate_up_[l][ol];
        ndn[l][s] = down_[l][ol];
        continue;
      }
      const char* p = got[src].data() + read[src];
      WS_CHECK(read[src] + per <= got[src].size(), "rebalance: short weight transfer from {}", src);
      ngu[l][s].assign(reinterpret_cast<const float*>(p), reinterpret_cast<const float*>(p) + gu_n);
      ndn[l][s].assign(reinterpret_cast<const float*>(p + gu_n * 4),
                       reinterpret_cast<const float*>(p + gu_n * 4) + dn_n);
      read[src] += per;
      ++moved;
    }
  gate_up_ = std::move(ngu);
  down_ = std::move(ndn);
  placement_ = std::move(next);
  for (auto& l : loads_) std::fill(l.begin(), l.end(), 0.0);
  ++rebalances_;
  if (me == 0)
    WS_LOG_INFO(
        "EPLB rebalance {}: new expert placement over {} ranks ({} experts moved to rank 0)",
        rebalances_, n, moved);
}

EpMetrics EpMoe::metrics() {
  const int n = pg_.size();
  const int32_t L = placement_.num_layers();
  const auto& c = dispatcher_->counters();
  std::vector<int64_t> mine(slot_tokens_);
  mine.push_back(c.tokens_sent);
  mine.push_back(c.bytes_sent);
  std::vector<int64_t> all(mine.size() * n);
  pg_.all_gather(mine.data(), mine.size() * sizeof(int64_t), all.data());
  EpMetrics m;
  m.forwards = metric_forwards_;
  m.rebalances = rebalances_;
  m.dispatch_seconds = c.dispatch_seconds;
  m.combine_seconds = c.combine_seconds;
  for (int32_t l = 0; l < L; ++l) {
    int64_t mx = 0, sum = 0;
    for (int r = 0; r < n; ++r) {
      const int64_t v = all[r * mine.size() + l];
      mx = std::max(mx, v);
      sum += v;
    }
    m.layer_tokens.push_back(sum);
    m.layer_imbalance.push_back(sum == 0 ? 1.0 : static_cast<double>(mx) * n / sum);
  }
  for (int r = 0; r < n; ++r) {
    m.tokens_dispatched += all[r * mine.size() + L];
    m.bytes_sent += all[r * mine.size() + L + 1];
  }
  return m;
}

void EpMoe::reset_metrics() {
  std::fill(slot_tokens_.begin(), slot_tokens_.end(), 0);
  dispatcher_->reset_counters();
  metric_forwards_ = 0;
}

}  // namespace wideserve::model
