// Order of processing in sample():
//   1. raw logprobs (only when requested): log_softmax of the untouched logits, and the top-k list;
//   2. banned tokens -> -inf;
//   3. repetition penalty on prompt+generated tokens, then frequency and presence penalties on
//      generated tokens (all in place, touching only those tokens);
//   4. temperature 0 (or below 1e-5): argmax (first max on ties), one pass;
//   5. otherwise probabilities exp((l - max) / T), then top_k, then top_p on the top_k-renormalised
//      distribution, then min_p relative to the max probability, renormalise, one uniform draw.
// NaN logits are treated as -inf; the sampler never returns a token whose logit is -inf or NaN.
#include "engine/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "common/check.h"

namespace wideserve::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();
constexpr float kGreedyTemperature = 1e-5f;

// splitmix64 finaliser: a good 64-bit mix, so (seed, step) -> random bits needs no stored state.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A token with a sort key (logit or probability); `before` is a strict total order: larger key
// first, lower token id first on ties, so every selection is deterministic.
struct Candidate {
  float key;
  int32_t token;
};
bool before(const Candidate& a, const Candidate& b) {
  return a.key > b.key || (a.key == b.key && a.token < b.token);
}

// Reused across calls on one thread: vocab-sized buffers per sequence would cost ~0.5 MB each.
struct Scratch {
  std::vector<float> probs;
  std::vector<Candidate> cands;
  std::vector<std::pair<int32_t, float>> originals;  // raw logits of tokens the penalties changed
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Replaces +inf by FLT_MAX so that exp(l - max) stays defined; returns the new max.
float clamp_pos_inf(std::span<float> logits) {
  for (float& x : logits)
    if (x == kPosInf) x = FLT_MAX;
  return FLT_MAX;
}

// Log-sum-exp of the raw row and its top-k tokens (k may be 0); sanitises +inf in place.
double raw_log_softmax(std::span<float> logits, int32_t k, std::vector<TokenLogprob>& top) {
  std::vector<Candidate> best;  // at most k <= 20 entries, sorted by `before`
  best.reserve(static_cast<size_t>(k) + 1);
  float m = kNegInf;
  const int32_t n = static_cast<int32_t>(logits.size());
  for (int32_t i = 0; i < n; ++i) {
    float x = logits[i];
    if (x > m) m = x;
    if (k > 0 && x > kNegInf &&
        (static_cast<int32_t>(best.size()) < k || before({x, i}, best.back()))) {
      Candidate c{x, i};
      best.insert(std::upper_bound(best.begin(), best.end(), c, before), c);
      if (static_cast<int32_t>(best.size()) > k) best.pop_back();
    }
  }
  WS_CHECK_ARG(m > kNegInf, "sampler: every logit is -inf or NaN");
  if (m == kPosInf) m = clamp_pos_inf(logits);
  double sum = 0.0;
  for (float x : logits) sum += x == x ? std::exp(x - m) : 0.0f;
  double lse = static_cast<double>(m) + std::log(sum);
  top.clear();
  for (const Candidate& c : best) {
    float v = std::min(c.key, FLT_MAX);
    top.push_back({c.token, static_cast<float>(v - lse)});
  }
  return lse;
}

void check_token(int32_t t, size_t vocab, const char* what) {
  WS_CHECK_ARG(t >= 0 && static_cast<size_t>(t) < vocab, "sampler: {} token {} outside [0, {})",
               what, t, vocab);
}

// Steps 2-3; records the raw value of every penalised token in `originals` (first entry wins).
void apply_bans_and_penalties(std::span<float> logits, const SamplingParams& p,
                              const SamplerState& st, std::span<const int32_t> banned,
                              std::vector<std::pair<int32_t, float>>& originals) {
  originals.clear();
  for (int32_t t : banned) {
    check_token(t, logits.size(), "banned");
    logits[t] = kNegInf;
  }
  if (p.repetition_penalty != 1.0f) {
    const float r = p.repetition_penalty;
    for (int32_t t : st.seen_tokens()) {
      check_token(t, logits.size(), "prompt/generated");
      float& x = logits[t];
      originals.emplace_back(t, x);
      x = x > 0.0f ? x / r : x * r;
    }
  }
  if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    for (const auto& [t, count] : st.generated_counts()) {
      check_token(t, logits.size(), "generated");
      float& x = logits[t];
      originals.emplace_back(t, x);
      x -= p.frequency_penalty * static_cast<float>(count) + p.presence_penalty;
    }
  }
}

// First index of the largest logit (NaN never compares greater), or -1 if all are -inf/NaN.
int32_t argmax(std::span<const float> logits) {
  float m = kNegInf;
  int32_t best = -1;
  const int32_t n = static_cast<int32_t>(logits.size());
  for (int32_t i = 0; i < n; ++i) {
    if (logits[i] > m) {
      m = logits[i];
      best = i;
    }
  }
  return best;
}

// Draws from weights given by `weight(j)` for j in [0, n) with total z: the first j whose running
// sum exceeds u * z; a zero weight is never chosen.
template <typename Weight>
int64_t draw(int64_t n, double z, double u, Weight weight) {
  const double target = u * z;
  double cum = 0.0;
  int64_t last_positive = -1;
  for (int64_t j = 0; j < n; ++j) {
    double w = weight(j);
    if (w <= 0.0) continue;
    cum += w;
    last_positive = j;
    if (cum > target) return j;
  }
  return last_positive;  // u * z rounded up to z
}

// Keeps the sorted prefix allowed by top_p (cumulative >= top_p of z, at least one) and min_p
// (weights >= min_p of the first, the maximum); returns its size and its total in *kept_z.
size_t truncate_sorted(const std::vector<Candidate>& sorted, double z, const SamplingParams& p,
                       double* kept_z) {
  const double target = static_cast<double>(p.top_p) * z;
  const float min_w = p.min_p * sorted.front().key;
  double cum = 0.0;
  size_t n = 0;
  while (n < sorted.size()) {
    if (n > 0 && sorted[n].key < min_w) break;
    cum += sorted[n].key;
    ++n;
    if (p.top_p < 1.0f && cum >= target) break;
  }
  *kept_z = cum;
  return n;
}

// Reorders c so that [0, n) is the smallest set of highest-weight candidates (in `before` order)
// whose weights sum to >= target, and returns n. Quickselect on the mass: expected O(size), where a
// full sort of a flat 129k-token row would dominate the step.
size_t select_top_p(std::vector<Candidate>& c, double target) {
  size_t lo = 0, hi = c.size();  // [0, lo) is in the set; the set ends inside [lo, hi)
  double need = target;
  while (hi - lo > 32) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(c.begin() + lo, c.begin() + mid, c.begin() + hi, before);
    double mass = 0.0;
    for (size_t i = lo; i <= mid; ++i) mass += c[i].key;
    if (mass >= need) {
      hi = mid + 1;
    } else {
      need -= mass;
      lo = mid + 1;
    }
  }
  std::sort(c.begin() + lo, c.begin() + hi, before);
  for (size_t i = lo; i < hi; ++i) {
    need -= c[i].key;
    if (need <= 0.0) return i + 1;
  }
  return std::max<size_t>(hi, 1);  // rounding left a sliver of mass: keep everything up to hi
}

// Step 5 when top_k is active: a k-heap over the finite logits, then work on k tokens only.
int32_t sample_top_k(std::span<const float> logits, const SamplingParams& p, float m, double u,
                     std::vector<Candidate>& cands) {
  const size_t k = static_cast<size_t>(p.top_k);
  cands.clear();
  const int32_t n = static_cast<int32_t>(logits.size());
  for (int32_t i = 0; i < n; ++i) {
    float x = logits[i];
    if (!(x > kNegInf)) continue;
    Candidate c{x, i};
    if (cands.size() < k) {
      cands.push_back(c);
      std::push_heap(cands.begin(), cands.end(), before);  // front = worst kept
    } else if (before(c, cands.front())) {
      std::pop_heap(cands.begin(), cands.end(), before);
      cands.back() = c;
      std::push_heap(cands.begin(), cands.end(), before);
    }
  }
  std::sort(cands.begin(), cands.end(), before);
  const float inv_t = 1.0f / p.temperature;
  double z = 0.0;
  for (Candidate& c : cands) {
    c.key = std::exp((c.key - m) * inv_t);  // stays sorted: exp is monotone
    z += c.key;
  }
  double kept_z = 0.0;
  size_t kept = truncate_sorted(cands, z, p, &kept_z);
  int64_t j = draw(static_cast<int64_t>(kept), kept_z, u, [&](int64_t i) { return cands[i].key; });
  return cands[j].token;
}

// Step 5 without top_k: probabilities of the whole row, then top_p/min_p if asked.
int32_t sample_full(std::span<const float> logits, const SamplingParams& p, float m, double u,
                    Scratch& s) {
  const size_t n = logits.size();
  s.probs.resize(n);
  float* probs = s.probs.data();
  const float inv_t = 1.0f / p.temperature;
  double z = 0.0;
  for (size_t i = 0; i < n; ++i) {
    float x = logits[i];
    float w = x == x ? std::exp((x - m) * inv_t) : 0.0f;
    probs[i] = w;
    z += w;
  }
  if (p.top_p < 1.0f) {
    // Select only among tokens above a weight threshold, lowered until they hold top_p of the mass;
    // the last round (threshold 0) takes every token, so the result is that of a full sort.
    const double target = static_cast<double>(p.top_p) * z;
    for (float thr : {1e-2f, 1e-4f, 1e-7f, 0.0f}) {
      s.cands.clear();
      double sum = 0.0;
      for (size_t i = 0; i < n; ++i) {
        if (thr > 0.0f ? probs[i] >= thr : probs[i] > 0.0f) {
          s.cands.push_back({probs[i], static_cast<int32_t>(i)});
          sum += probs[i];
        }
      }
      if (sum >= target || thr == 0.0f) break;
    }
    const size_t kept = select_top_p(s.cands, target);
    const float min_w = p.min_p;  // the max weight is exp(0) = 1
    auto weight = [&](int64_t i) { return s.cands[i].key >= min_w ? s.cands[i].key : 0.0f; };
    double kept_z = 0.0;
    for (size_t i = 0; i < kept; ++i) kept_z += weight(static_cast<int64_t>(i));
    return s.cands[draw(static_cast<int64_t>(kept), kept_z, u, weight)].token;
  }
  if (p.min_p > 0.0f) {
    // The max weight is exp(0) = 1, so min_p of it is min_p itself.
    z = 0.0;
    for (size_t i = 0; i < n; ++i) {
      if (probs[i] < p.min_p) probs[i] = 0.0f;
      z += probs[i];
    }
  }
  return static_cast<int32_t>(
      draw(static_cast<int64_t>(n), z, u, [&](int64_t i) { return probs[i]; }));
}

}  // namespace

SamplerState::SamplerState(const SamplingParams& params, std::span<const int32_t> prompt_tokens,
                           uint64_t default_seed_if_unseeded, int32_t sample_index) {
  uint64_t base = params.seed.value_or(default_seed_if_unseeded);
  seed_ = sample_index == 0 ? base : mix64(base ^ mix64(static_cast<uint64_t>(sample_index)));
  for (int32_t t : prompt_tokens) mark_seen(t);
}

void SamplerState::mark_seen(int32_t token) {
  if (seen_.insert(token).second) seen_list_.push_back(token);
}

void SamplerState::append(int32_t token) {
  ++counts_[token];
  mark_seen(token);
  ++num_generated_;
}

double SamplerState::uniform(int64_t step) const {
  uint64_t bits = mix64(seed_ ^ mix64(static_cast<uint64_t>(step) + 0xD1B54A32D192ED03ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

SampleResult sample(std::span<float> logits, const SamplingParams& p, SamplerState& st,
                    std::span<const int32_t> banned_tokens) {
  WS_CHECK_ARG(!logits.empty(), "sampler: empty logits row");
  Scratch& s = scratch();
  SampleResult result;
  double lse = 0.0;
  const bool want_logprobs = p.top_logprobs >= 0;
  if (want_logprobs) lse = raw_log_softmax(logits, p.top_logprobs, result.top);

  apply_bans_and_penalties(logits, p, st, banned_tokens, s.originals);

  // Like vLLM, a temperature this small is greedy: 1/T would overflow the weights.
  if (p.temperature < kGreedyTemperature) {
    result.token = argmax(logits);
    WS_CHECK_ARG(result.token >= 0, "sampler: every token is banned or -inf");
  } else {
    float m = kNegInf;
    for (float x : logits) m = x > m ? x : m;
    WS_CHECK_ARG(m > kNegInf, "sampler: every token is banned or -inf");
    if (m == kPosInf) m = clamp_pos_inf(logits);
    const double u = st.uniform(st.num_generated());
    const bool use_top_k = p.top_k > 0 && static_cast<size_t>(p.top_k) < logits.size();
    result.token =
        use_top_k ? sample_top_k(logits, p, m, u, s.cands) : sample_full(logits, p, m, u, s);
  }
  WS_CHECK(result.token >= 0 && logits[result.token] > kNegInf, "sampler chose an invalid token");

  if (want_logprobs) {
    float raw = logits[result.token];
    for (const auto& [t, v] : s.originals) {
      if (t == result.token) {
        raw = v;
        break;
      }
    }
    result.logprob = static_cast<float>(static_cast<double>(std::min(raw, FLT_MAX)) - lse);
  }
  return result;
}

}  // namespace wideserve::engine
