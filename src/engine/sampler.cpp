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
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
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
  std::vector<double> block_sums;
  std::vector<double> hist;           // top_p mass per weight bucket
  std::vector<Candidate> edge_cands;  // top_p: tokens of the bucket where the mass crosses
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

// 4-wide SIMD through GCC/Clang vector extensions (SSE2 baseline): std::exp does not vectorise and
// made the exp pass over a 129k row ~3x slower.
using V4f = float __attribute__((vector_size(16)));
using V4i = int32_t __attribute__((vector_size(16)));
constexpr size_t kLanes = 4;
constexpr size_t kBlock = 1024;  // weights are summed per block so that a draw can skip blocks

V4f load4(const float* p) {
  V4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// exp(x) for x <= 0 within 1e-7 relative (Cody-Waite reduction, degree-6 polynomial); exactly 0
// for x < -87 (float's normal range ends there), -inf and NaN, so such tokens are never drawn.
V4f exp_nonpos(V4f x) {
  const V4i keep = x >= -87.0f;
  const V4f xc = keep ? x : V4f{} - 87.0f;
  const V4f n = (xc * 1.44269504f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  V4f r = xc - n * 0.693145752f;
  r = r - n * 1.42860677e-6f;
  V4f q = r * 1.9875691500e-4f + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.0f;
  const V4i bits = reinterpret_cast<V4i>(q) + (__builtin_convertvector(n, V4i) << 23);
  return keep ? reinterpret_cast<V4f>(bits) : V4f{};
}

// out[i] = exp((in[i] - m) * scale), or 0 where that is below min_w. Returns the total and the
// total of every kBlock weights in block_sums (fixed order, so the result is deterministic).
double exp_weights(const float* in, float* out, size_t n, float m, float scale, float min_w,
                   std::vector<double>& block_sums) {
  block_sums.clear();
  double total = 0.0;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = std::min(n, b + kBlock);
    V4f acc{};
    size_t i = b;
    for (; i + kLanes <= e; i += kLanes) {
      V4f y = exp_nonpos((load4(in + i) - m) * scale);
      y = y >= min_w ? y : V4f{};
      std::memcpy(out + i, &y, sizeof y);
      acc += y;
    }
    if (i < e) {                // only in the last block
      V4f x = V4f{} + kNegInf;  // padding lanes weigh 0
      std::memcpy(&x, in + i, (e - i) * sizeof(float));
      V4f y = exp_nonpos((x - m) * scale);
      y = y >= min_w ? y : V4f{};
      std::memcpy(out + i, &y, (e - i) * sizeof(float));
      acc += y;
    }
    const double sum = static_cast<double>(acc[0]) + acc[1] + acc[2] + acc[3];
    block_sums.push_back(sum);
    total += sum;
  }
  return total;
}

// Largest value, ignoring NaN; -inf when there is none.
float row_max(std::span<const float> x) {
  V4f m4 = V4f{} + kNegInf;
  size_t i = 0;
  for (; i + kLanes <= x.size(); i += kLanes) {
    const V4f v = load4(x.data() + i);
    m4 = v > m4 ? v : m4;
  }
  float m = kNegInf;
  for (size_t l = 0; l < kLanes; ++l) m = m4[l] > m ? m4[l] : m;
  for (; i < x.size(); ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Raw log_softmax: logprob(t) = (logit(t) - max) - log_z, kept in two parts so that huge logits
// (+inf clamped to FLT_MAX) do not lose the small term.
struct LogSoftmax {
  float max = 0.0f;
  double log_z = 0.0;
  float of(float logit) const {
    return static_cast<float>(static_cast<double>(std::min(logit, FLT_MAX) - max) - log_z);
  }
};

// Log-softmax of the raw row and its top-k tokens (k may be 0); sanitises +inf in place.
LogSoftmax raw_log_softmax(std::span<float> logits, int32_t k, std::vector<TokenLogprob>& top,
                           Scratch& s) {
  std::vector<Candidate> best;  // at most k <= 20 entries, sorted by `before`
  best.reserve(static_cast<size_t>(k) + 1);
  float m = row_max(logits);
  float admit = kNegInf;  // the logit a token needs to enter `best` once it is full
  const int32_t n = static_cast<int32_t>(logits.size());
  for (int32_t i = 0; k > 0 && i < n; ++i) {
    const float x = logits[i];
    if (!(x >= admit) || x == kNegInf) continue;  // also skips NaN
    const Candidate c{x, i};
    if (static_cast<int32_t>(best.size()) == k) {
      if (!before(c, best.back())) continue;
      best.pop_back();
    }
    best.insert(std::upper_bound(best.begin(), best.end(), c, before), c);
    if (static_cast<int32_t>(best.size()) == k) admit = best.back().key;
  }
  WS_CHECK_ARG(m > kNegInf, "sampler: every logit is -inf or NaN");
  if (m == kPosInf) m = clamp_pos_inf(logits);
  std::vector<float>& w = s.probs;
  w.resize(logits.size());
  const double sum = exp_weights(logits.data(), w.data(), w.size(), m, 1.0f, 0.0f, s.block_sums);
  const LogSoftmax ls{m, std::log(sum)};
  top.clear();
  for (const Candidate& c : best) top.push_back({c.token, ls.of(c.key)});
  return ls;
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

// First index of the largest logit (NaN never compares greater), or -1 if all are -inf/NaN. One
// pass, 4 lanes each keeping its first max; the scalar loop was bound by its compare chain.
int32_t argmax(std::span<const float> logits) {
  const size_t n = logits.size();
  V4f m4 = V4f{} + kNegInf;
  V4i i4 = V4i{} - 1;
  V4i cur = {0, 1, 2, 3};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const V4f v = load4(logits.data() + i);
    const V4i gt = v > m4;
    m4 = gt ? v : m4;
    i4 = gt ? cur : i4;
    cur += static_cast<int32_t>(kLanes);
  }
  float m = kNegInf;
  int32_t best = -1;
  for (size_t l = 0; l < kLanes; ++l) {
    if (m4[l] > m || (m4[l] == m && i4[l] >= 0 && i4[l] < best)) {
      m = m4[l];
      best = i4[l];
    }
  }
  for (; i < n; ++i) {
    if (logits[i] > m) {
      m = logits[i];
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

// Draws from weights `weight(j)`, j in [0, n): the first j whose running sum exceeds target (u
// times the total); a zero weight is never chosen.
template <typename Weight>
int64_t draw(int64_t n, double target, Weight weight) {
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

// Reorders c[start:] so that [start, n) is the smallest set of highest-weight candidates (in
// `before` order) whose weights sum to >= target, and returns n. Quickselect on the mass: expected
// O(size), where a full sort of a flat 129k-token row would dominate the step.
size_t select_top_p(std::vector<Candidate>& c, size_t start, double target) {
  size_t lo = start, hi = c.size();  // [0, lo) is in the set; the set ends inside [lo, hi)
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
  int64_t j = draw(static_cast<int64_t>(kept), u * kept_z, [&](int64_t i) { return cands[i].key; });
  return cands[j].token;
}

// top_p over a whole row without sorting it. A histogram of mass over weight buckets (exponent and
// top mantissa bits, monotone for positive floats) finds the bucket where the mass counted from
// the top reaches target; only that bucket's tokens are ordered. Leaves in s.cands the tokens
// above that bucket, then the bucket's kept prefix; returns their count.
size_t gather_top_p(const float* w, size_t n, double target, Scratch& s) {
  constexpr int kShift = 18;  // 32 buckets per octave
  auto bucket = [](float x) { return std::bit_cast<uint32_t>(x) >> kShift; };
  const uint32_t num_buckets = bucket(1.0f) + 1;  // weights are in [0, 1]
  s.hist.assign(num_buckets, 0.0);
  for (size_t i = 0; i < n; ++i)
    if (w[i] > 0.0f) s.hist[bucket(w[i])] += w[i];
  double above = 0.0;
  uint32_t edge = 0;
  for (uint32_t b = num_buckets; b-- > 0;) {
    if (above + s.hist[b] >= target) {
      edge = b;
      break;
    }
    above += s.hist[b];
  }
  s.cands.clear();
  s.edge_cands.clear();
  for (size_t i = 0; i < n; ++i) {
    if (!(w[i] > 0.0f)) continue;
    const uint32_t b = bucket(w[i]);
    if (b > edge)
      s.cands.push_back({w[i], static_cast<int32_t>(i)});
    else if (b == edge)
      s.edge_cands.push_back({w[i], static_cast<int32_t>(i)});
  }
  const size_t start = s.cands.size();
  s.cands.insert(s.cands.end(), s.edge_cands.begin(), s.edge_cands.end());
  return select_top_p(s.cands, start, target - above);
}

// Draws from a whole row of weights: finds the block holding u * total, then scans inside it.
int32_t draw_blocked(const std::vector<float>& w, const std::vector<double>& block_sums,
                     double total, double u) {
  const double target = u * total;
  double cum = 0.0;
  size_t block = block_sums.size();
  bool found = false;
  for (size_t b = 0; b < block_sums.size() && !found; ++b) {
    if (block_sums[b] <= 0.0) continue;
    block = b;
    if (cum + block_sums[b] > target)
      found = true;
    else
      cum += block_sums[b];
  }
  WS_CHECK(block < block_sums.size(), "sampler: no token has a positive weight");
  const size_t begin = block * kBlock, end = std::min(w.size(), begin + kBlock);
  // Past the last block only by rounding: take the last positive weight.
  const double inner = found ? target - cum : std::numeric_limits<double>::infinity();
  int64_t j =
      draw(static_cast<int64_t>(end - begin), inner, [&](int64_t i) { return w[begin + i]; });
  return static_cast<int32_t>(begin + j);
}

// Step 5 without top_k: weights of the whole row, then top_p/min_p if asked.
int32_t sample_full(std::span<const float> logits, const SamplingParams& p, float m, double u,
                    Scratch& s) {
  const size_t n = logits.size();
  s.probs.resize(n);
  const float* probs = s.probs.data();
  // The max weight is exp(0) = 1, so min_p of the max is min_p itself. With top_p, min_p applies
  // after it, and top_p's cumulative sum needs the full mass.
  const float min_w = p.top_p < 1.0f ? 0.0f : p.min_p;
  const double z =
      exp_weights(logits.data(), s.probs.data(), n, m, 1.0f / p.temperature, min_w, s.block_sums);
  if (p.top_p >= 1.0f) return draw_blocked(s.probs, s.block_sums, z, u);
  const size_t kept = gather_top_p(probs, n, static_cast<double>(p.top_p) * z, s);
  auto weight = [&](int64_t i) { return s.cands[i].key >= p.min_p ? s.cands[i].key : 0.0f; };
  double kept_z = 0.0;
  for (size_t i = 0; i < kept; ++i) kept_z += weight(static_cast<int64_t>(i));
  return s.cands[draw(static_cast<int64_t>(kept), u * kept_z, weight)].token;
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
  LogSoftmax ls;
  const bool want_logprobs = p.top_logprobs >= 0;
  if (want_logprobs) ls = raw_log_softmax(logits, p.top_logprobs, result.top, s);

  apply_bans_and_penalties(logits, p, st, banned_tokens, s.originals);

  // Like vLLM, a temperature this small is greedy: 1/T would overflow the weights.
  if (p.temperature < kGreedyTemperature) {
    result.token = argmax(logits);
    WS_CHECK_ARG(result.token >= 0, "sampler: every token is banned or -inf");
  } else {
    float m = row_max(logits);
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
    result.logprob = ls.of(raw);
  }
  return result;
}

}  // namespace wideserve::engine
