// POST /v1/chat/completions and /v1/completions: parse, pre-process, route each prompt to a
// worker, stream the outputs back through the per-choice post-processing, account metrics, and
// abort the engine work of clients that leave.
#include <deque>
#include <random>

#include "api/openai_response.h"
#include "common/check.h"
#include "common/logging.h"
#include "frontend/choice_stream.h"
#include "frontend/frontend.h"
#include "frontend/migration.h"
#include "frontend/output_channel.h"
#include "frontend/prepare_request.h"

namespace wideserve::frontend {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

// One engine request (one prompt with its n samples) in flight on a worker.
struct EngineCall {
  uint64_t id = 0;
  std::string endpoint;
  std::string worker;
  size_t prompt_index = 0;
  int choice_base = 0;  // choice index of the call's sample 0
  int32_t samples = 1;
  int32_t open = 0;          // samples whose choice has not finished
  bool worker_done = false;  // every sample got its final output from the worker
  int32_t worker_open = 0;   // samples the worker has not finished
  int64_t cached_tokens = 0;
  bool aborted = false;
  router::Assignment route;  // counts the call in its worker's load while it lives
  // PD: the prefill request that computes the prompt's KV for this call.
  uint64_t prefill_id = 0;
  std::string prefill_endpoint;
  router::Assignment prefill_route;
  bool prefill_done = true;
  bool prefill_aborted = false;
  bool resumed = false;  // a migration's continuation: its cached tokens are not the prompt's
};

uint64_t random_room() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t r = 0;
  while (r == 0) r = rng() >> 1;  // [1, 2^63): 0 means "no room"
  return r;
}

}  // namespace

net::awaitable<void> Frontend::handle_completion(HttpExchange& ex, int endpoint_int) {
  const auto endpoint = static_cast<api::Endpoint>(endpoint_int);
  const bool chat = endpoint == api::Endpoint::kChatCompletions;
  const auto t0 = Clock::now();
  const std::string ep_label = chat ? "chat_completions" : "completions";
  if (draining_) {
    co_await respond_error(ex, 503, "service_unavailable", "the server is shutting down");
    co_return;
  }
  // Bad input: an OpenAI error object with the right status, never an exception out of here.
  api::CompletionRequest req;
  std::optional<api::ApiError> failure;
  std::shared_ptr<const ModelInfo> model;
  PreparedRequest prep;
  try {
    req = api::parse_request(ex.request().body(), endpoint);
    model = models_.model(req.model);
    if (!model) {
      api::ApiError e;
      e.status = 404;
      e.type = "not_found_error";
      e.param = "model";
      e.code = "model_not_found";
      e.message = fmt::format("The model '{}' does not exist or has no live worker", req.model);
      throw api::ApiException(e);
    }
    prep = prepare_request(req, *model);
  } catch (const api::ApiException& e) {
    failure = e.error();
  } catch (const Error& e) {
    api::ApiError err = api::invalid_request(user_message(e));
    if (e.code() != ErrorCode::kInvalidArgument) {
      err.status = 500;
      err.type = "server_error";
    }
    failure = err;
  }
  const std::string model_label = model ? model->name : "";
  auto count_request = [&](const char* status) {
    metrics_
        .counter("wideserve_frontend_requests_total", "Requests by endpoint, type and status",
                 {"model", "endpoint", "request_type", "status"},
                 {model_label, ep_label, req.stream ? "stream" : "unary", status})
        .inc();
  };
  if (failure) {
    count_request("error");
    co_await ex.respond(static_cast<http::status>(failure->status), "application/json",
                        api::error_body(*failure));
    co_return;
  }
  // Admission: bounded concurrency, and somewhere to send the work.
  if (inflight_.fetch_add(1) >= opts_.max_concurrent_requests) {
    inflight_.fetch_sub(1);
    count_request("rejected");
    co_await respond_error(
        ex, 429, "rate_limit_error",
        fmt::format("too many concurrent requests (limit {})", opts_.max_concurrent_requests));
    co_return;
  }
  struct InflightGuard {
    std::atomic<int64_t>& n;
    ~InflightGuard() { n.fetch_sub(1); }
  } inflight_guard{inflight_};
  // Prefill workers present: disaggregated (prefill + decode per request); else aggregated.
  std::vector<router::Candidate> prefill_cands, cands;
  for (auto& c : models_.candidates(req.model))
    (c.role == runtime::WorkerRole::kPrefill ? prefill_cands : cands).push_back(std::move(c));
  const bool pd = !prefill_cands.empty();
  if (cands.empty()) {
    count_request("error");
    const std::string msg =
        fmt::format("no live {} worker serves model '{}'", pd ? "decode" : "", req.model);
    co_await respond_error(ex, 503, "service_unavailable", msg);
    co_return;
  }
  // --busy-threshold / --busy-queue-limit: refuse rather than queue without bound.
  if (router_.all_busy(cands) || prefill_router_.all_busy(prefill_cands)) {
    count_request("rejected");
    co_await respond_error(
        ex, 503, "service_unavailable",
        fmt::format("every worker of model '{}' is busy; retry later", req.model));
    co_return;
  }

  auto& queued = metrics_.gauge("wideserve_frontend_queued_requests",
                                "Requests waiting for their first token", {"model"}, {model_label});
  auto& ttft_h =
      metrics_.histogram("wideserve_frontend_time_to_first_token_seconds", "Time to first token",
                         {"model"}, {model_label}, latency_buckets());
  auto& itl_h =
      metrics_.histogram("wideserve_frontend_inter_token_latency_seconds", "Time between tokens",
                         {"model"}, {model_label}, latency_buckets());
  auto& dur_h = metrics_.histogram("wideserve_frontend_request_duration_seconds",
                                   "Request duration", {"model"}, {model_label}, latency_buckets());
  auto& in_tok = metrics_.counter("wideserve_frontend_input_tokens_total", "Prompt tokens",
                                  {"model"}, {model_label});
  auto& out_tok = metrics_.counter("wideserve_frontend_output_tokens_total", "Generated tokens",
                                   {"model"}, {model_label});
  auto& disconnected = metrics_.counter("wideserve_frontend_disconnected_clients_total",
                                        "Clients that left before their request finished", {}, {});

  const int n = prep.params.n;
  const size_t num_prompts = prep.prompts.size();
  std::vector<ChoiceStream> choices;
  choices.reserve(num_prompts * n);
  for (size_t p = 0; p < num_prompts; ++p)
    for (int i = 0; i < n; ++i) {
      thread_local std::mt19937_64 seed_rng{std::random_device{}()};
      ChoiceOptions co = prep.choice;
      co.tool_id_seed = seed_rng();
      choices.emplace_back(*model->tokenizer, co, static_cast<int>(p * n + i));
    }

  auto executor = co_await net::this_coro::executor;
  auto channel = std::make_shared<OutputChannel>(executor);
  auto handler = [channel](const engine::RequestOutput& o) { channel->push(o); };
  if (opts_.migration_limit > 0) {
    thread_local std::mt19937_64 seed_rng{std::random_device{}()};
    pin_seed_for_migration(prep.params, seed_rng());
  }
  MigrationLedger ledger(choices.size(), opts_.migration_limit);
  std::deque<EngineCall> calls;  // a deque: migrations append while a call is referenced
  std::string send_error;
  // Sends one engine call (PD: prefill + decode) for g.params.n choices from choice_base; false
  // (send_error set) when it could not be sent.
  auto dispatch = [&](size_t p, int choice_base, runtime::GenerateRequest g,
                      const std::vector<router::Candidate>& dec,
                      const std::vector<router::Candidate>& pre, bool resumed) {
    router::Assignment route = router_.route(dec, g.token_ids);
    const auto& c = dec[route.index()];
    EngineCall call;
    call.route = std::move(route);
    call.id = next_request_id_.fetch_add(1);
    call.endpoint = c.endpoint;
    call.worker = c.instance_id;
    call.prompt_index = p;
    call.samples = g.params.n;
    call.choice_base = choice_base;
    call.open = call.worker_open = call.samples;
    call.resumed = resumed;
    g.request_id = call.id;
    g.dp_rank = call.route.dp_rank();
    try {
      if (!pre.empty()) {
        call.prefill_route = prefill_router_.route(pre, g.token_ids);
        const auto& pc = pre[call.prefill_route.index()];
        g.disagg.bootstrap_host = pc.bootstrap_host;
        g.disagg.bootstrap_port = pc.bootstrap_port;
        g.disagg.bootstrap_room = random_room();
        runtime::GenerateRequest pg = g;
        call.prefill_id = next_request_id_.fetch_add(1);
        call.prefill_endpoint = pc.endpoint;
        call.prefill_done = false;
        pg.request_id = call.prefill_id;
        pg.dp_rank = call.prefill_route.dp_rank();
        // Both go out together: the decode side reserves pages while the prefill waits.
        client_->generate(pc.endpoint, std::move(pg), handler);
      }
      client_->generate(c.endpoint, std::move(g), handler);
    } catch (const Error& e) {
      send_error = user_message(e);
      if (!call.prefill_done) client_->abort(call.prefill_endpoint, call.prefill_id);
      return false;
    }
    for (int i = 0; i < call.samples; ++i) ledger.set_owner(choice_base + i, call.id);
    calls.push_back(std::move(call));
    return true;
  };
  for (size_t p = 0; p < num_prompts && send_error.empty(); ++p) {
    // PD: one call per sample, each with its own bootstrap room (n > 1 never shares a room).
    for (int i = 0; i < (pd ? n : 1); ++i) {
      runtime::GenerateRequest g;
      g.token_ids = prep.prompts[p];
      g.params = prep.params;
      if (pd) {
        g.params.n = 1;
        g.sample_index = i;
      }
      if (!dispatch(p, static_cast<int>(p) * n + i, std::move(g), cands, prefill_cands, false))
        break;
    }
  }
  int64_t prompt_tokens = 0;
  for (const auto& ids : prep.prompts) prompt_tokens += static_cast<int64_t>(ids.size());
  in_tok.inc(static_cast<double>(prompt_tokens));

  api::ResponseMeta meta;
  meta.endpoint = endpoint;
  meta.id = random_id(chat ? "chatcmpl" : "cmpl");
  meta.created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  meta.model = req.model;
  // return_token_ids: chat carries the prompt ids at the top level (first chunk only when
  // streaming), completions in each choice (first delta only when streaming).
  api::ResponseMeta first_meta = meta;
  if (req.return_token_ids && chat) first_meta.prompt_token_ids = prep.prompts.front();
  std::vector<bool> sent_prompt_ids(choices.size(), false);

  ex.watch_disconnect([channel] { channel->wake(); });
  bool streaming_ok = true;
  if (req.stream) streaming_ok = co_await ex.start_stream();
  if (req.stream && chat && streaming_ok) {
    // OpenAI opens each choice with the assistant role.
    std::vector<api::ChoiceOut> first(choices.size());
    for (size_t i = 0; i < choices.size(); ++i) {
      first[i].index = static_cast<int>(i);
      first[i].role = "assistant";
    }
    streaming_ok =
        co_await ex.write_chunk(api::sse_event(api::build_chunk(first_meta, first, std::nullopt)));
  }

  std::vector<api::ChoiceOut> totals(choices.size());
  for (size_t i = 0; i < totals.size(); ++i) totals[i].index = static_cast<int>(i);
  std::string error;
  bool first_token_seen = false;
  queued.add(1);
  auto last_token_time = t0;
  int64_t completion_tokens = 0;
  auto open_choices = [&] {
    int k = 0;
    for (const auto& c : calls) k += c.open;
    return k;
  };
  auto& migrations = metrics_.counter("wideserve_frontend_migrations_total",
                                      "Choices moved to another worker after theirs was lost",
                                      {"model"}, {model_label});
  // The worker under `from` was lost while it produced choice ch: continue the choice elsewhere
  // (prompt + its tokens so far). False when the limit is spent; sets `error` when no other
  // worker can take it.
  auto migrate = [&](EngineCall& from, size_t ch, const std::string& lost_endpoint,
                     const std::string& why) {
    if (!ledger.try_migrate(ch)) return false;
    std::vector<router::Candidate> pre, dec;
    for (auto& c : models_.candidates(req.model)) {
      if (c.endpoint == lost_endpoint) continue;  // discovery may not have dropped it yet
      (c.role == runtime::WorkerRole::kPrefill ? pre : dec).push_back(std::move(c));
    }
    --from.open;  // the choice leaves this call either way
    if (dec.empty()) {
      error = fmt::format("{}; no other worker to continue on", why);
      return false;
    }
    const auto& done = ledger.tokens(ch);
    WS_LOG_WARN(
        "request {}: choice {} moves to another worker after {} token(s) (migration {}/{}): {}",
        meta.id, ch, done.size(), ledger.migrations(ch), ledger.limit(), why);
    auto g = make_resume_request(prep.prompts[from.prompt_index], prep.params,
                                 static_cast<int32_t>(ch % n), done);
    WS_CHECK(g.has_value(), "a choice with nothing left to generate cannot migrate");
    migrations.inc();
    if (!dispatch(from.prompt_index, static_cast<int>(ch), std::move(*g), dec, pre, true)) {
      error = send_error;
      return false;
    }
    return true;
  };
  if (!send_error.empty()) error = send_error;
  while (error.empty() && open_choices() > 0 && !ex.client_gone()) {
    co_await channel->wait(Clock::now() + std::chrono::seconds(1));
    auto outs = channel->take();
    if (outs.empty()) continue;
    std::vector<api::ChoiceOut> deltas;
    const auto now = Clock::now();
    for (auto& o : outs) {
      auto pf = std::find_if(calls.begin(), calls.end(), [&](const EngineCall& c) {
        return c.prefill_id == o.id && o.id != 0;
      });
      if (pf != calls.end()) {
        // Prefill side of a PD call: only its end matters (the tokens come from decode).
        if (o.finish != engine::FinishReason::kNone) pf->prefill_done = true;
        if (o.finish == engine::FinishReason::kError && !pf->prefill_aborted) {
          // A lost prefill worker: its decode side waits for KV that never comes; stop it and
          // run the choice again through prefill + decode.
          const auto ch = static_cast<size_t>(pf->choice_base);
          if (is_worker_loss(o) && pf->open > 0 && ledger.owner(ch) == pf->id &&
              !choices[ch].finished() &&
              static_cast<int64_t>(ledger.tokens(ch).size()) < prep.params.max_new_tokens) {
            EngineCall& from = *pf;
            if (!from.worker_done && !from.aborted) {
              from.aborted = true;
              client_->abort(from.endpoint, from.id);
            }
            if (migrate(from, ch, from.prefill_endpoint, "prefill failed: " + o.error)) continue;
            if (!error.empty()) break;
          }
          error = "prefill failed: " + o.error;
          break;
        }
        continue;
      }
      auto it = std::find_if(calls.begin(), calls.end(),
                             [&](const EngineCall& c) { return c.id == o.id; });
      if (it == calls.end() || o.index < 0 || o.index >= it->samples) continue;
      auto& call = *it;
      if (o.finish != engine::FinishReason::kNone && --call.worker_open == 0)
        call.worker_done = true;
      call.cached_tokens = std::max(call.cached_tokens, o.cached_tokens);
      const auto ch = static_cast<size_t>(call.choice_base + o.index);
      auto& cs = choices[ch];
      if (cs.finished() || ledger.owner(ch) != call.id) continue;  // done, or moved elsewhere
      if (is_worker_loss(o)) {
        if (static_cast<int64_t>(ledger.tokens(ch).size()) >= prep.params.max_new_tokens) {
          // Lost after its last token but before the finish: it has all it asked for.
          o.finish = engine::FinishReason::kLength;
          o.error.clear();
        } else {
          if (!call.prefill_done && !call.prefill_aborted) {
            call.prefill_aborted = true;
            client_->abort(call.prefill_endpoint, call.prefill_id);
          }
          if (migrate(call, ch, call.endpoint, o.error)) continue;
          if (!error.empty()) break;
        }
      }
      if (!o.new_tokens.empty()) {
        if (!first_token_seen) {
          first_token_seen = true;
          queued.add(-1);
          ttft_h.observe(seconds(now - t0));
        } else {
          itl_h.observe(seconds(now - last_token_time) / static_cast<double>(o.new_tokens.size()));
        }
        last_token_time = now;
      }
      const int64_t before = cs.completion_tokens();
      ledger.record(ch, call.id, o.new_tokens);
      auto d = cs.push(o);
      completion_tokens += cs.completion_tokens() - before;
      if (!cs.error().empty()) {
        error = cs.error();
        break;
      }
      if (cs.finished()) {
        --call.open;
        // A stop string ended this choice early: once no sample of the call needs the worker,
        // stop the engine so its KV pages come back now.
        if (call.open == 0 && !call.worker_done && !call.aborted) {
          call.aborted = true;
          client_->abort(call.endpoint, call.id);
        }
      }
      if (ChoiceStream::has_content(d)) {
        if (req.return_token_ids && !chat && !sent_prompt_ids[d.index]) {
          sent_prompt_ids[d.index] = true;
          d.prompt_token_ids = prep.prompts[call.prompt_index];
        }
        accumulate_choice(totals[d.index], d);
        deltas.push_back(std::move(d));
      }
    }
    if (req.stream && !deltas.empty() && error.empty() && streaming_ok) {
      std::optional<api::UsageOut> usage;
      if (req.continuous_usage_stats) usage = api::UsageOut{prompt_tokens, completion_tokens, 0};
      // Choices updated together go out as one chunk each (OpenAI sends one choice per chunk).
      std::string batch;
      for (auto& d : deltas)
        batch +=
            api::sse_event(api::build_chunk(meta, std::span<const api::ChoiceOut>(&d, 1), usage));
      streaming_ok = co_await ex.write_chunk(std::move(batch));
    }
  }
  ex.stop_watching();
  if (!first_token_seen) queued.add(-1);
  out_tok.inc(static_cast<double>(completion_tokens));

  const bool gone = ex.client_gone() || !streaming_ok;
  if (gone || !error.empty()) {
    // Stop whatever the workers still compute for this request: its KV pages come back.
    for (auto& c : calls) {
      if (!c.worker_done && !c.aborted) {
        c.aborted = true;
        client_->abort(c.endpoint, c.id);
      }
      if (!c.prefill_done && !c.prefill_aborted) {
        c.prefill_aborted = true;
        client_->abort(c.prefill_endpoint, c.prefill_id);
      }
    }
  }
  dur_h.observe(seconds(Clock::now() - t0));
  if (gone) {
    disconnected.inc();
    count_request("disconnected");
    co_return;
  }
  int64_t cached = 0;
  for (const auto& c : calls)
    if (!c.resumed) cached += c.cached_tokens;
  metrics_
      .counter("wideserve_frontend_cached_tokens_total",
               "Prompt tokens the workers served from their prefix caches", {"model"},
               {model_label})
      .inc(static_cast<double>(cached));
  const api::UsageOut usage{prompt_tokens, completion_tokens, cached};
  if (!error.empty()) {
    count_request("error");
    WS_LOG_WARN("request {} failed: {}", meta.id, error);
    api::ApiError e;
    e.status = 503;
    e.type = "service_unavailable";
    e.message = error;
    if (req.stream) {
      co_await ex.write_chunk(api::sse_error_event(e) + std::string(api::kSseDone));
      co_await ex.end_stream();
    } else {
      co_await ex.respond(http::status::service_unavailable, "application/json",
                          api::error_body(e));
    }
    co_return;
  }
  count_request("success");
  if (req.stream) {
    std::string tail;
    if (req.include_usage) tail += api::sse_event(api::build_chunk(meta, {}, usage));
    tail += api::kSseDone;
    co_await ex.write_chunk(std::move(tail));
    co_await ex.end_stream();
  } else {
    if (req.return_token_ids && !chat)
      for (size_t i = 0; i < totals.size(); ++i) totals[i].prompt_token_ids = prep.prompts[i / n];
    co_await ex.respond(http::status::ok, "application/json",
                        api::build_response(first_meta, totals, usage));
  }
}

}  // namespace wideserve::frontend
