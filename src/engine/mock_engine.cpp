#include "engine/mock_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::engine {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_prompt(const std::vector<int32_t>& ids) {
  uint64_t h = 0x1234567ULL;
  for (int32_t t : ids) h = mix(h ^ static_cast<uint32_t>(t));
  return h;
}

RequestOutput error_output(uint64_t id, const std::string& msg) {
  RequestOutput o;
  o.id = id;
  o.finish = FinishReason::kError;
  o.error = msg;
  return o;
}

}  // namespace

int32_t MockEngine::token_at(uint64_t prompt_hash, uint64_t seed, int32_t index, int64_t position,
                             int64_t vocab_size) {
  // Ordinary BPE ids (no specials at either end of the vocabulary) so the text decodes cleanly.
  const int64_t lo = std::min<int64_t>(1000, vocab_size / 4);
  const int64_t hi = std::max<int64_t>(lo + 1, std::min<int64_t>(21000, vocab_size));
  const uint64_t h =
      mix(prompt_hash ^
          mix(seed ^ mix(static_cast<uint64_t>(index) << 32 ^ static_cast<uint64_t>(position))));
  return static_cast<int32_t>(lo + static_cast<int64_t>(h % static_cast<uint64_t>(hi - lo)));
}

MockEngine::MockEngine(const MockEngineConfig& cfg) : cfg_(cfg) {
  WS_CHECK_ARG(cfg_.decode_step_ms > 0, "--mock-decode-ms must be > 0 (got {})",
               cfg_.decode_step_ms);
  WS_CHECK_ARG(cfg_.prefill_tokens_per_s > 0, "--mock-prefill-tokens-per-s must be > 0 (got {})",
               cfg_.prefill_tokens_per_s);
  WS_CHECK_ARG(cfg_.vocab_size > 0 && cfg_.page_size > 0 && cfg_.max_running_requests > 0,
               "mock engine: vocab, page size and max running requests must be positive");
  stats_.pages_total = cfg_.max_total_tokens / cfg_.page_size;
  stats_.pages_free = stats_.pages_total;
  thread_ = std::thread([this] { loop(); });
}

MockEngine::~MockEngine() {
  shutdown();
}

void MockEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MockEngine::add_request(NewRequest r, OutputCallback cb) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox_.emplace_back(std::move(r), std::move(cb));
  }
  cv_.notify_all();
}

void MockEngine::abort(uint64_t id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    aborts_.push_back(id);
  }
  cv_.notify_all();
}

EngineStats MockEngine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void MockEngine::finish_seq(Seq& s, FinishReason r,
                            std::vector<std::pair<OutputCallback*, RequestOutput>>& out) {
  auto it = reqs_.find(s.id);
  if (it == reqs_.end()) return;
  RequestOutput o;
  o.id = s.id;
  o.index = s.index;
  o.finish = r;
  o.prompt_tokens = s.prompt_len;
  o.completion_tokens = s.generated;
  out.emplace_back(&it->second.cb, std::move(o));
  pages_used_ -= s.pages;
  s.pages = 0;
  --it->second.open;
}

void MockEngine::loop() {
  using clock = std::chrono::steady_clock;
  auto next_tick = clock::now();
  for (;;) {
    std::vector<std::pair<NewRequest, OutputCallback>> adds;
    std::vector<uint64_t> aborts;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] {
        return stop_ || !inbox_.empty() || !aborts_.empty() || !running_.empty() ||
               !waiting_.empty();
      });
      if (stop_) break;
      adds.swap(inbox_);
      aborts.swap(aborts_);
    }
    if (running_.empty() && waiting_.empty()) next_tick = clock::now();
    std::vector<std::pair<OutputCallback*, RequestOutput>> out;
    std::vector<std::pair<OutputCallback, RequestOutput>> rejected;
    for (auto& [r, cb] : adds) {
      const int64_t len = static_cast<int64_t>(r.prompt.size());
      try {
        r.params.validate(cfg_.vocab_size);
        WS_CHECK_ARG(len > 0, "prompt is empty");
        for (int32_t t : r.prompt)
          WS_CHECK_ARG(t >= 0 && t < cfg_.vocab_size, "token id {} is outside the vocabulary", t);
        WS_CHECK_ARG(len < cfg_.context_length, "prompt has {} tokens; the context length is {}",
                     len, cfg_.context_length);
        WS_CHECK_ARG(!reqs_.count(r.id), "duplicate request id {}", r.id);
        WS_CHECK_ARG(r.resumed_tokens == 0 ||
                         (r.resumed_tokens > 0 && r.resumed_tokens < len && r.params.n == 1),
                     "resumed_tokens {} needs n = 1 and a longer prompt", r.resumed_tokens);
      } catch (const Error& e) {
        rejected.emplace_back(std::move(cb), error_output(r.id, e.what()));
        continue;
      }
      // A migrated sample continues its original sequence: the hash covers the original prompt,
      // positions count from the resumed tokens, and a lone sample keeps its index.
      const int64_t resumed = r.resumed_tokens;
      const uint64_t ph = hash_prompt({r.prompt.begin(), r.prompt.end() - resumed});
      const uint64_t seed = r.params.seed.value_or(0);
      for (int32_t i = 0; i < r.params.n; ++i) {
        Seq s{r.id, i, ph, seed, len};
        s.resumed = resumed;
        s.seed_index = r.params.n == 1 ? r.sample_index : i;
        waiting_.push_back(s);
      }
      Req q{std::move(r), std::move(cb), 0};
      q.open = q.req.params.n;
      reqs_.emplace(q.req.id, std::move(q));
    }
    for (auto& [cb, o] : rejected) cb(o);
    for (uint64_t id : aborts) {
      auto drop = [&](auto& seqs) {
        for (auto& s : seqs)
          if (s.id == id) finish_seq(s, FinishReason::kAbort, out);
        seqs.erase(
            std::remove_if(seqs.begin(), seqs.end(), [&](const Seq& s) { return s.id == id; }),
            seqs.end());
      };
      drop(running_);
      drop(waiting_);
    }
    // Admission: FCFS while slots and KV pages last.
    int64_t prefill_tokens = 0;
    const int64_t pages_total = stats_.pages_total;
    while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < cfg_.max_running_requests) {
      Seq& s = waiting_.front();
      const int64_t need = (s.prompt_len + 1 + cfg_.page_size - 1) / cfg_.page_size;
      if (pages_used_ + need > pages_total) break;
      s.pages = need;
      pages_used_ += need;
      prefill_tokens += s.prompt_len;
      running_.push_back(s);
      waiting_.pop_front();
    }
    // The step: every running sequence gets one token.
    const bool stepped = !running_.empty();
    for (auto& s : running_) {
      auto it = reqs_.find(s.id);
      const SamplingParams& p = it->second.req.params;
      const int32_t tok =
          token_at(s.prompt_hash, s.seed, s.seed_index, s.resumed + s.generated, cfg_.vocab_size);
      ++s.generated;
      const int64_t total = s.prompt_len + s.generated;
      const int64_t need = (total + 1 + cfg_.page_size - 1) / cfg_.page_size;
      if (need > s.pages) {
        pages_used_ += need - s.pages;
        s.pages = need;
      }
      RequestOutput o;
      o.id = s.id;
      o.index = s.index;
      o.new_tokens.push_back(tok);
      if (p.top_logprobs >= 0) o.logprobs.push_back(SampleResult{tok, 0.0f, {{tok, 0.0f}}});
      o.prompt_tokens = s.prompt_len;
      o.completion_tokens = s.generated;
      const bool stop_tok = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) !=
                                p.stop_token_ids.end() &&
                            s.generated > p.min_new_tokens;
      if (stop_tok) {
        o.finish = FinishReason::kStop;
        o.matched_stop_token = tok;
      } else if (s.generated >= p.max_new_tokens || total >= cfg_.context_length) {
        o.finish = FinishReason::kLength;
      }
      if (o.finish != FinishReason::kNone) {
        pages_used_ -= s.pages;
        s.pages = 0;
        --it->second.open;
      }
      out.emplace_back(&it->second.cb, std::move(o));
    }
    running_.erase(
        std::remove_if(running_.begin(), running_.end(), [](const Seq& s) { return s.pages == 0; }),
        running_.end());
    // Hold the step for its simulated duration, then deliver (as a real step would).
    next_tick += std::chrono::microseconds(static_cast<int64_t>(
        cfg_.decode_step_ms * 1000.0 + prefill_tokens * 1e6 / cfg_.prefill_tokens_per_s));
    if (stepped) std::this_thread::sleep_until(next_tick);
    int64_t generated = 0;
    for (auto& [cb, o] : out) {
      generated += static_cast<int64_t>(o.new_tokens.size());
      (*cb)(o);
    }
    for (auto it = reqs_.begin(); it != reqs_.end();)
      it = it->second.open <= 0 ? reqs_.erase(it) : std::next(it);
    std::lock_guard<std::mutex> lk(mu_);
    stats_.running = static_cast<int64_t>(running_.size());
    stats_.waiting = static_cast<int64_t>(waiting_.size());
    stats_.pages_free = stats_.pages_total - pages_used_;
    stats_.generated_tokens += generated;
    ++stats_.steps;
  }
  // Shutdown: every open sample hears an abort.
  std::vector<std::pair<OutputCallback*, RequestOutput>> out;
  for (auto& s : running_) finish_seq(s, FinishReason::kAbort, out);
  for (auto& s : waiting_) finish_seq(s, FinishReason::kAbort, out);
  for (auto& [cb, o] : out) (*cb)(o);
  std::vector<std::pair<NewRequest, OutputCallback>> never;
  {
    std::lock_guard<std::mutex> lk(mu_);
    never.swap(inbox_);
  }
  for (auto& [r, cb] : never) {
    RequestOutput o;
    o.id = r.id;
    o.finish = FinishReason::kAbort;
    cb(o);
  }
}

}  // namespace wideserve::engine
