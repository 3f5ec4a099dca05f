#include "engine/engine_core.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::engine {

// One sequence: a request with n = 1, or one of the n samples of a request.
struct EngineCore::Seq {
  uint64_t id = 0;
  int32_t index = 0;
  SamplingParams params;
  std::vector<int32_t> tokens;  // prompt then generated tokens
  int64_t prompt_len = 0;
  int64_t num_computed = 0;    // leading tokens whose KV is in `pages`
  std::vector<int32_t> pages;  // page table; the first tree_pages belong to the prefix cache
  int64_t tree_pages = 0;
  kvcache::LockHandle lock;  // on the tree pages, when any
  RequestState state = RequestState::kWaiting;
  std::optional<SamplerState> sampler;
  int64_t cached_tokens = 0;
  uint64_t admit_order = 0;
  bool prompt_cached = false;  // prompt pages handed to the prefix cache after prefill
  Seq* leader = nullptr;       // n > 1: sample 0, whose cached prompt the others reuse
  bool hold_kv = false;        // keep pages after finishing (prefill of a disaggregated request)
  int64_t generated() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
};

namespace {

// Appends one logits row to a device-sampling batch: its settings, its penalty entries (distinct
// seen tokens with generated counts, only when a penalty is on) and its bans. A row that samples
// nothing this step (mid-prefill chunk) goes in as a plain greedy row.
void add_sample_row(DeviceSampleBatch& b, const SamplingParams& p, const SamplerState& st,
                    bool samples, std::span<const int32_t> banned) {
  if (b.penalty_offsets.empty()) b.penalty_offsets.push_back(0);
  if (b.banned_offsets.empty()) b.banned_offsets.push_back(0);
  DeviceSampleRow row;
  if (samples) {
    row = {p.temperature,
           p.top_p,
           p.min_p,
           p.top_k,
           p.presence_penalty,
           p.frequency_penalty,
           p.repetition_penalty,
           st.seed(),
           static_cast<uint64_t>(st.num_generated())};
    if (p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
      const auto& counts = st.generated_counts();
      for (int32_t t : st.seen_tokens()) {
        auto it = counts.find(t);
        b.penalty_tokens.push_back(t);
        b.penalty_counts.push_back(it == counts.end() ? 0 : it->second);
      }
    }
    b.banned_tokens.insert(b.banned_tokens.end(), banned.begin(), banned.end());
    b.want_logprobs = b.want_logprobs || p.top_logprobs >= 0;
  }
  b.rows.push_back(row);
  b.penalty_offsets.push_back(static_cast<int32_t>(b.penalty_tokens.size()));
  b.banned_offsets.push_back(static_cast<int32_t>(b.banned_tokens.size()));
}

}  // namespace

EngineCore::EngineCore(const EngineConfig& cfg, std::unique_ptr<ModelRunner> runner)
    : cfg_(cfg), runner_(std::move(runner)), pool_(static_cast<int32_t>(runner_->num_pages())) {
  cfg_.validate();
  WS_CHECK_ARG(runner_->page_size() == cfg_.page_size, "runner page size {} != --page-size {}",
               runner_->page_size(), cfg_.page_size);
  if (!cfg_.disable_radix_cache) {
    radix_ = std::make_unique<kvcache::RadixCache>(pool_, static_cast<int32_t>(cfg_.page_size));
    if (cfg_.kv_event_sink) radix_->set_event_sink(cfg_.kv_event_sink);
  }
  eos_ = runner_->eos_token_ids();
  context_length_ = cfg_.context_length > 0 ? cfg_.context_length : runner_->max_context();
  stats_.pages_total = pool_.num_pages();
}

EngineCore::~EngineCore() = default;

void EngineCore::validate_request(const NewRequest& r) const {
  const int64_t V = runner_->vocab_size();
  WS_CHECK_ARG(!requests_.count(r.id) && !held_.count(r.id), "request id {} is already in use",
               r.id);
  WS_CHECK_ARG(!r.prompt.empty(), "the prompt is empty");
  for (int32_t t : r.prompt)
    WS_CHECK_ARG(t >= 0 && t < V, "prompt token id {} is outside the vocabulary [0, {})", t, V);
  r.params.validate(V);
  WS_CHECK_ARG(!r.hold_kv || r.params.n == 1, "a disaggregated request must have n = 1");
  const int64_t len = static_cast<int64_t>(r.prompt.size());
  WS_CHECK_ARG(
      r.resumed_tokens == 0 || (r.resumed_tokens > 0 && r.resumed_tokens < len && r.params.n == 1),
      "resumed_tokens {} needs n = 1 and a longer prompt ({} tokens)", r.resumed_tokens, len);
  WS_CHECK_ARG(len < context_length_,
               "the prompt has {} tokens; the context length is {} (--context-length)", len,
               context_length_);
  // Everything one sequence can ever hold must fit in the pool, or it could never finish.
  const int64_t most = std::min<int64_t>(len + r.params.max_new_tokens, context_length_);
  const int64_t cap = pool_.num_pages() * cfg_.page_size;
  WS_CHECK_ARG(most <= cap,
               "prompt ({}) + max_tokens needs {} KV slots; the pool holds {} (--max-total-tokens)",
               len, most, cap);
}

void EngineCore::add_request(NewRequest r) {
  validate_request(r);
  const int64_t len = static_cast<int64_t>(r.prompt.size());
  static thread_local std::mt19937_64 seed_rng{std::random_device{}()};
  const uint64_t seed = seed_rng();
  auto& seqs = requests_[r.id];
  for (int32_t i = 0; i < r.params.n; ++i) {
    auto s = std::make_unique<Seq>();
    s->id = r.id;
    s->index = i;
    s->params = r.params;
    s->tokens = r.prompt;
    s->prompt_len = len;
    s->sampler.emplace(r.params, r.prompt, seed, r.params.n == 1 ? r.sample_index : i);
    for (int64_t k = len - r.resumed_tokens; k < len; ++k) s->sampler->append(r.prompt[k]);
    s->hold_kv = r.hold_kv;
    s->leader = (i > 0 && radix_) ? seqs[0].get() : nullptr;
    waiting_.push_back(s.get());
    seqs.push_back(std::move(s));
  }
}

void EngineCore::abort(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  for (auto& s : it->second) {
    if (s->state == RequestState::kFinished) continue;
    finish(s.get(), FinishReason::kAbort, &pending_outputs_);
  }
}

RequestOutput& EngineCore::output_for(Seq* s, std::vector<RequestOutput>* out) {
  for (auto& o : *out)
    if (o.id == s->id && o.index == s->index) return o;
  RequestOutput o;
  o.id = s->id;
  o.index = s->index;
  out->push_back(std::move(o));
  return out->back();
}

void EngineCore::release_kv(Seq* s, bool cache) {
  if (radix_ && cache && s->num_computed >= cfg_.page_size) {
    // Full pages of computed tokens go to the prefix cache (duplicates are freed by it).
    const int64_t full = s->num_computed / cfg_.page_size;
    radix_->insert({s->tokens.data(), static_cast<size_t>(full * cfg_.page_size)},
                   {s->pages.data(), static_cast<size_t>(full)});
    std::vector<int32_t> rest(s->pages.begin() + full, s->pages.end());
    pool_.free(rest);
  } else {
    std::vector<int32_t> own(s->pages.begin() + s->tree_pages, s->pages.end());
    pool_.free(own);
  }
  if (radix_) radix_->release(s->lock);
  s->lock = {};
  s->pages.clear();
  s->tree_pages = 0;
}

void EngineCore::finish(Seq* s, FinishReason r, std::vector<RequestOutput>* out) {
  const bool hold = s->hold_kv && (r == FinishReason::kStop || r == FinishReason::kLength) &&
                    s->state != RequestState::kWaiting;
  if (hold) {
    // The KV goes to a decode engine first; release_held_kv() frees it afterwards.
    running_.erase(std::find(running_.begin(), running_.end(), s));
    held_info_[s->id] = HeldKv{s->pages, s->prompt_len};
  } else if (s->state != RequestState::kWaiting) {
    release_kv(s, r != FinishReason::kError);
    running_.erase(std::find(running_.begin(), running_.end(), s));
  } else {
    auto it = std::find(waiting_.begin(), waiting_.end(), s);
    if (it != waiting_.end()) waiting_.erase(it);
  }
  s->state = RequestState::kFinished;
  RequestOutput& o = output_for(s, out);
  o.finish = r;
  o.prompt_tokens = s->prompt_len;
  o.cached_tokens = s->cached_tokens;
  o.completion_tokens = s->generated();
  // Once every sample of the request is finished, forget it (its id may be reused).
  auto& seqs = requests_[s->id];
  if (hold) {
    for (auto& q : seqs)
      if (q.get() == s) held_[s->id] = std::move(q);
  }
  if (std::all_of(seqs.begin(), seqs.end(),
                  [](const auto& q) { return !q || q->state == RequestState::kFinished; }))
    requests_.erase(s->id);
}

const HeldKv* EngineCore::held_kv(uint64_t id) const {
  auto it = held_info_.find(id);
  return it == held_info_.end() ? nullptr : &it->second;
}

void EngineCore::release_held_kv(uint64_t id) {
  auto it = held_.find(id);
  if (it == held_.end()) return;
  release_kv(it->second.get(), true);
  held_.erase(it);
  held_info_.erase(id);
}

std::optional<std::vector<int32_t>> EngineCore::reserve_pages(int64_t tokens) {
  const int64_t need = kvcache::pages_for(tokens, cfg_.page_size);
  if (need > pool_.num_free() && radix_)
    radix_->evict(static_cast<int32_t>(need - pool_.num_free()));
  if (need > pool_.num_free()) return std::nullopt;
  std::vector<int32_t> pages;
  WS_CHECK(pool_.alloc(static_cast<int32_t>(need), &pages), "page allocation");
  reserved_pages_ += need;
  return pages;
}

void EngineCore::free_reserved_pages(const std::vector<int32_t>& pages) {
  reserved_pages_ -= static_cast<int64_t>(pages.size());
  pool_.free(pages);
}

void EngineCore::add_prefilled_request(NewRequest r, std::vector<int32_t> pages,
                                       SampleResult first) {
  validate_request(r);
  WS_CHECK_ARG(r.params.n == 1, "a disaggregated request must have n = 1");
  const int64_t len = static_cast<int64_t>(r.prompt.size());
  WS_CHECK(static_cast<int64_t>(pages.size()) >= kvcache::pages_for(len, cfg_.page_size),
           "{} pages cannot hold {} prompt tokens", pages.size(), len);
  WS_CHECK_ARG(first.token >= 0 && first.token < runner_->vocab_size(),
               "first token {} from the prefill engine is outside the vocabulary", first.token);
  reserved_pages_ -= static_cast<int64_t>(pages.size());
  static thread_local std::mt19937_64 seed_rng{std::random_device{}()};
  auto s = std::make_unique<Seq>();
  s->id = r.id;
  s->index = 0;
  s->params = r.params;
  s->tokens = r.prompt;
  s->prompt_len = len;
  s->sampler.emplace(r.params, r.prompt, seed_rng(), r.sample_index);
  for (int64_t k = len - r.resumed_tokens; k < len; ++k) s->sampler->append(r.prompt[k]);
  s->pages = std::move(pages);
  s->num_computed = len;
  s->state = RequestState::kDecoding;
  s->admit_order = admit_counter_++;
  Seq* p = s.get();
  requests_[r.id].push_back(std::move(s));
  if (!p->prompt_cached) cache_prompt(p);
  p->sampler->append(first.token);
  p->tokens.push_back(first.token);
  running_.push_back(p);
  ++stats_.generated_tokens;
  RequestOutput& o = output_for(p, &pending_outputs_);
  o.new_tokens.push_back(first.token);
  if (p->params.top_logprobs >= 0) o.logprobs.push_back(first);
  const bool is_eos = !p->params.ignore_eos && p->params.min_new_tokens <= 0 &&
                      std::find(eos_.begin(), eos_.end(), first.token) != eos_.end();
  const bool is_stop = std::find(p->params.stop_token_ids.begin(), p->params.stop_token_ids.end(),
                                 first.token) != p->params.stop_token_ids.end();
  if (is_eos || is_stop) {
    o.matched_stop_token = first.token;
    finish(p, FinishReason::kStop, &pending_outputs_);
  } else if (p->generated() >= p->params.max_new_tokens || len + 1 >= context_length_) {
    finish(p, FinishReason::kLength, &pending_outputs_);
  }
}

void EngineCore::retract(Seq* s) {
  // Recompute later from scratch: prompt + tokens generated so far stay, KV goes.
  release_kv(s, true);
  s->num_computed = 0;
  s->state = RequestState::kWaiting;
  s->prompt_cached = false;
  running_.erase(std::find(running_.begin(), running_.end(), s));
  waiting_.push_front(s);  // it was admitted before everything still waiting
  ++stats_.retractions;
}

bool EngineCore::ensure_pages(Seq* s, int64_t tokens_after, Seq* requester) {
  const int64_t need =
      kvcache::pages_for(tokens_after, cfg_.page_size) - static_cast<int64_t>(s->pages.size());
  if (need <= 0) return true;
  for (;;) {
    if (pool_.num_free() >= need) {
      WS_CHECK(pool_.alloc(static_cast<int32_t>(need), &s->pages), "page allocation");
      return true;
    }
    if (radix_ && radix_->evict(static_cast<int32_t>(need - pool_.num_free())) > 0) continue;
    // Retract the newest running sequence (possibly the requester itself).
    Seq* victim = running_.back();
    retract(victim);
    if (victim == requester) return false;
  }
}

void EngineCore::cache_prompt(Seq* s) {
  // After the prompt's prefill, share its full pages through the prefix cache so that siblings
  // (n > 1) and concurrent requests with the same prefix reuse them.
  s->prompt_cached = true;
  if (!radix_ || s->num_computed < cfg_.page_size) return;
  const int64_t full = s->num_computed / cfg_.page_size;
  auto ins = radix_->insert({s->tokens.data(), static_cast<size_t>(full * cfg_.page_size)},
                            {s->pages.data(), static_cast<size_t>(full)}, /*lock=*/true);
  WS_CHECK(static_cast<int64_t>(ins.pages.size()) == full, "prefix cache returned {} pages for {}",
           ins.pages.size(), full);
  // Duplicates of pages already cached were freed: use the tree's copies from now on.
  std::copy(ins.pages.begin(), ins.pages.end(), s->pages.begin());
  radix_->release(s->lock);
  s->lock = ins.lock;
  s->tree_pages = full;
}

std::vector<RequestOutput> EngineCore::step() {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<RequestOutput> out = std::move(pending_outputs_);
  pending_outputs_.clear();
  int64_t budget = cfg_.chunked_prefill_size;
  std::vector<BatchItem> batch;
  // 1. Running sequences: one decode token, or the next prefill chunk within the budget.
  for (size_t i = 0; i < running_.size(); ++i) {
    Seq* s = running_[i];
    const int64_t remaining = static_cast<int64_t>(s->tokens.size()) - s->num_computed;
    int64_t n = 1;
    if (remaining > 1) {
      n = std::min(remaining, budget);
      if (n == 0) continue;
    }
    if (!ensure_pages(s, s->num_computed + n, s)) break;  // s itself was retracted
    if (remaining > 1) budget -= n;
    batch.push_back({s, n});
  }
  // 2. Admit waiting sequences in arrival order while slots, budget and memory allow.
  while (!waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < cfg_.max_running_requests) {
    Seq* s = waiting_.front();
    if (s->leader && s->leader->state != RequestState::kFinished && !s->leader->prompt_cached)
      break;
    if (radix_) {
      auto m = radix_->match_prefix(s->tokens);
      s->pages = m.pages;
      s->tree_pages = static_cast<int64_t>(m.pages.size());
      s->num_computed = m.num_tokens;
      s->lock = m.lock;
    }
    const int64_t remaining = static_cast<int64_t>(s->tokens.size()) - s->num_computed;
    const int64_t n = std::min(remaining, budget);
    const int64_t need_now =
        kvcache::pages_for(s->num_computed + n, cfg_.page_size) - s->tree_pages;
    const int64_t need_all = kvcache::pages_for(s->tokens.size(), cfg_.page_size) - s->tree_pages;
    const int64_t avail = pool_.num_free() + (radix_ ? radix_->evictable_pages() : 0);
    if (need_all <= avail && need_now > pool_.num_free())
      radix_->evict(static_cast<int32_t>(need_now - pool_.num_free()));
    if (need_all > avail || need_now > pool_.num_free()) {
      // Not enough memory: undo the match and stop admitting (FCFS: nobody overtakes).
      if (radix_) radix_->release(s->lock);
      s->lock = {};
      s->pages.clear();
      s->tree_pages = 0;
      s->num_computed = 0;
      break;
    }
    WS_CHECK(pool_.alloc(static_cast<int32_t>(need_now), &s->pages), "page allocation");
    if (s->generated() == 0) {
      s->cached_tokens = s->num_computed;
      stats_.prefix_hit_tokens += s->num_computed;
    }
    waiting_.pop_front();
    s->state = RequestState::kPrefilling;
    s->admit_order = admit_counter_++;
    running_.push_back(s);
    budget -= n;
    batch.push_back({s, n});
  }
  if (batch.empty()) return out;
  // 3. One forward over every scheduled row.
  std::vector<model::SequenceInput> in;
  in.reserve(batch.size());
  int64_t decode_rows = 0, prefill_rows = 0;
  for (const auto& b : batch) {
    in.push_back({std::span<const int32_t>(b.seq->tokens).subspan(b.seq->num_computed, b.n),
                  b.seq->num_computed, b.seq->pages, false});
    (b.n == 1 && b.seq->state == RequestState::kDecoding ? decode_rows : prefill_rows) += b.n;
  }
  // Greedy steps on a GPU runner take the argmax on the device: only token ids cross to the host.
  bool device_greedy = runner_->supports_device_greedy();
  for (size_t i = 0; device_greedy && i < batch.size(); ++i) {
    const Seq* s = batch[i].seq;
    const SamplingParams& p = s->params;
    device_greedy = p.temperature == 0.0f && p.top_logprobs < 0 && p.presence_penalty == 0.0f &&
                    p.frequency_penalty == 0.0f && p.repetition_penalty == 1.0f &&
                    s->generated() >= p.min_new_tokens;
  }
  // Bans of a sequence about to sample: EOS and stop tokens before min_new_tokens.
  auto bans_for = [&](const Seq* s) {
    std::vector<int32_t> banned;
    if (s->generated() < s->params.min_new_tokens) {
      if (!s->params.ignore_eos) banned = eos_;
      banned.insert(banned.end(), s->params.stop_token_ids.begin(), s->params.stop_token_ids.end());
    }
    return banned;
  };
  // Other steps sample on the device when the runner can and no row wants top_logprobs
  // alternatives (the chosen token's logprob comes back with it).
  bool device_sample = !device_greedy && runner_->supports_device_sampling();
  for (size_t i = 0; device_sample && i < batch.size(); ++i)
    device_sample = batch[i].seq->params.top_logprobs <= 0;
  DeviceSampleBatch sample_batch;
  if (device_sample) {
    for (const auto& b : batch) {
      const Seq* s = b.seq;
      const bool samples = s->num_computed + b.n >= static_cast<int64_t>(s->tokens.size());
      add_sample_row(sample_batch, s->params, *s->sampler, samples,
                     samples ? bans_for(s) : std::vector<int32_t>{});
    }
  }
  std::vector<float> logits, sampled_logprobs;
  std::vector<int32_t> greedy_ids;
  try {
    if (device_greedy)
      runner_->forward_greedy(in, &greedy_ids);
    else if (device_sample)
      runner_->forward_sample(in, sample_batch, &greedy_ids, &sampled_logprobs);
    else
      runner_->forward(in, &logits);
  } catch (const std::exception& e) {
    // The step failed as a whole: fail its requests, keep serving the rest.
    WS_LOG_ERROR("forward step failed: {}", e.what());
    for (const auto& b : batch) {
      if (b.seq->state == RequestState::kFinished) continue;
      output_for(b.seq, &out).error = e.what();
      finish(b.seq, FinishReason::kError, &out);
    }
    return out;
  }
  ++stats_.steps;
  // 4. Sample where a sequence's known tokens are all computed; check stop conditions.
  const int64_t V = runner_->vocab_size();
  int64_t new_tokens = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    Seq* s = batch[i].seq;
    s->num_computed += batch[i].n;
    if (s->num_computed < static_cast<int64_t>(s->tokens.size())) continue;  // mid-prefill chunk
    SampleResult r;
    try {
      if (device_greedy) {
        r.token = greedy_ids[i];
      } else if (device_sample) {
        r.token = greedy_ids[i];
        WS_CHECK_ARG(r.token >= 0 && r.token < V, "sampler: every token is banned or -inf");
        if (sample_batch.want_logprobs) r.logprob = sampled_logprobs[i];
      } else {
        r = sample({logits.data() + i * V, static_cast<size_t>(V)}, s->params, *s->sampler,
                   bans_for(s));
      }
    } catch (const Error& e) {
      RequestOutput& o = output_for(s, &out);
      o.error = e.what();
      finish(s, FinishReason::kError, &out);
      continue;
    }
    s->sampler->append(r.token);
    s->tokens.push_back(r.token);
    ++new_tokens;
    if (s->state == RequestState::kPrefilling) {
      s->state = RequestState::kDecoding;
      if (!s->prompt_cached) cache_prompt(s);
    }
    RequestOutput& o = output_for(s, &out);
    o.new_tokens.push_back(r.token);
    if (s->params.top_logprobs >= 0) o.logprobs.push_back(std::move(r));
    const int32_t t = s->tokens.back();
    const bool is_eos =
        !s->params.ignore_eos && std::find(eos_.begin(), eos_.end(), t) != eos_.end();
    const bool is_stop = std::find(s->params.stop_token_ids.begin(), s->params.stop_token_ids.end(),
                                   t) != s->params.stop_token_ids.end();
    if (is_eos || is_stop) {
      o.matched_stop_token = t;
      finish(s, FinishReason::kStop, &out);
    } else if (s->generated() >= s->params.max_new_tokens ||
               static_cast<int64_t>(s->tokens.size()) >= context_length_) {
      finish(s, FinishReason::kLength, &out);
    }
  }
  stats_.generated_tokens += new_tokens;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  tokens_since_log_ += new_tokens;
  seconds_since_log_ += secs;
  if (prefill_rows == 0 && ++decode_steps_since_log_ >= cfg_.decode_log_interval)
    log_step(decode_rows, prefill_rows, secs);
  return out;
}

void EngineCore::log_step(int64_t decode_rows, int64_t prefill_rows, double seconds) {
  const int64_t used = pool_.num_pages() - pool_.num_free();
  WS_LOG_INFO(
      "Decode batch: #running-req: {}, #token: {}, token usage: {:.2f}, gen throughput (token/s): "
      "{:.2f}, #queue-req: {}",
      running_.size(), used * cfg_.page_size, static_cast<double>(used) / pool_.num_pages(),
      seconds_since_log_ > 0 ? tokens_since_log_ / seconds_since_log_ : 0.0, waiting_.size());
  decode_steps_since_log_ = 0;
  tokens_since_log_ = 0;
  seconds_since_log_ = 0;
}

EngineStats EngineCore::stats() const {
  EngineStats s = stats_;
  s.running = static_cast<int64_t>(running_.size());
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.pages_free = pool_.num_free();
  s.pages_cached = radix_ ? radix_->cached_pages() : 0;
  s.pages_evictable = radix_ ? radix_->evictable_pages() : 0;
  return s;
}

}  // namespace wideserve::engine
