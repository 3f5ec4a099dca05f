#include "moe/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "common/check.h"
#include "common/thread_pool.h"

namespace wideserve::moe {

void route_tokens(const RouterParams& p, const float* logits, const float* bias, int64_t n,
                  int32_t* topk_ids, float* topk_weights) {
  const int32_t E = p.num_experts, K = p.top_k;
  WS_CHECK(E > 0 && K > 0 && K <= E, "router: bad experts {} / top_k {}", E, K);
  const bool grouped = p.method != TopkMethod::kGreedy && p.n_group > 1;
  WS_CHECK(!grouped || (E % p.n_group == 0 && p.topk_group >= 1 && p.topk_group <= p.n_group),
           "router: {} experts, {} groups, topk_group {}", E, p.n_group, p.topk_group);
  const int32_t per_group = grouped ? E / p.n_group : E;
  parallel_for(n, 64, [&](size_t tb, size_t te) {
    std::vector<float> scores(E), choice(E), gscore(grouped ? p.n_group : 0);
    std::vector<int32_t> order(E), gorder(grouped ? p.n_group : 0);
    for (size_t t = tb; t < te; ++t) {
      const float* l = logits + t * E;
      if (p.scoring == ScoringFunc::kSigmoid) {
        for (int32_t e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + std::exp(-l[e]));
      } else {
        float mx = *std::max_element(l, l + E), sum = 0.f;
        for (int32_t e = 0; e < E; ++e) sum += (scores[e] = std::exp(l[e] - mx));
        for (int32_t e = 0; e < E; ++e) scores[e] /= sum;
      }
      const bool use_bias = bias && p.method == TopkMethod::kNoauxTc;
      for (int32_t e = 0; e < E; ++e) choice[e] = scores[e] + (use_bias ? bias[e] : 0.f);
      if (grouped) {
        for (int32_t g = 0; g < p.n_group; ++g) {
          const float* c = choice.data() + g * per_group;
          if (p.method == TopkMethod::kNoauxTc) {
            // Sum of the group's two best experts (one if the group has a single expert).
            float a = -INFINITY, b = -INFINITY;
            for (int32_t i = 0; i < per_group; ++i) {
              if (c[i] > a) {
                b = a;
                a = c[i];
              } else if (c[i] > b) {
                b = c[i];
              }
            }
            gscore[g] = per_group >= 2 ? a + b : a;
          } else {
            gscore[g] = *std::max_element(c, c + per_group);
          }
        }
        std::iota(gorder.begin(), gorder.end(), 0);
        std::partial_sort(gorder.begin(), gorder.begin() + p.topk_group, gorder.end(),
                          [&](int32_t a, int32_t b) {
                            return gscore[a] > gscore[b] || (gscore[a] == gscore[b] && a < b);
                          });
        std::vector<char> keep(p.n_group, 0);
        for (int32_t i = 0; i < p.topk_group; ++i) keep[gorder[i]] = 1;
        // Experts outside the chosen groups can never be selected.
        const float masked = p.method == TopkMethod::kNoauxTc ? -INFINITY : 0.0f;
        for (int32_t e = 0; e < E; ++e)
          if (!keep[e / per_group]) choice[e] = masked;
      }
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t a, int32_t b) {
        return choice[a] > choice[b] || (choice[a] == choice[b] && a < b);
      });
      int32_t* ids = topk_ids + t * K;
      float* w = topk_weights + t * K;
      float sum = 0.f;
      for (int32_t k = 0; k < K; ++k) {
        ids[k] = order[k];
        w[k] = scores[order[k]];
        sum += w[k];
      }
      const float denom = p.norm_topk_prob ? sum + 1e-20f : 1.0f;
      for (int32_t k = 0; k < K; ++k) w[k] = w[k] / denom * p.routed_scaling_factor;
    }
  });
}

}  // namespace wideserve::moe
