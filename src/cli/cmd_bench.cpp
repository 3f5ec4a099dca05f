// `wideserve bench`: serving benchmark client for OpenAI-compatible servers (streaming chat or
// completions): TTFT, ITL, TPOT, latency, throughput, goodput, errors by kind. See docs/bench.md.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/check.h"
#include "loadgen/dataset.h"
#include "loadgen/plot.h"
#include "loadgen/progress.h"
#include "loadgen/report.h"
#include "loadgen/runner.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::cli {
namespace {

using namespace wideserve::loadgen;

struct BenchArgs {
  BenchConfig cfg;
  std::string endpoint = "chat", dataset = "random", dataset_path, tokenizer_dir, extra_body;
  std::string output_json, output_csv, plot;
  int64_t num_prompts = 0, input_len = 1024, output_len = 128, sharegpt_output_len = 0;
  double range_ratio = 1.0;
  bool random_ids = false, no_ignore_eos = false;
  int32_t id_low = 1000, id_high = 30000;
  int64_t prefix_groups = 4, prefix_users = 8, prefix_len = 1024;
  SloConfig slo;
};

std::vector<Prompt> make_prompts(const BenchArgs& a, int64_t count) {
  TokenCounter counter;
  std::shared_ptr<tokenizer::Tokenizer> tok;
  if (!a.tokenizer_dir.empty()) {
    tok = tokenizer::Tokenizer::from_dir(a.tokenizer_dir);
    counter = [tok](std::string_view text) {
      return static_cast<int64_t>(tok->encode(text, false).size());
    };
  }
  bool ids = a.random_ids;
  WS_CHECK_ARG(!ids || a.cfg.request.endpoint == Endpoint::kCompletions,
               "--random-ids needs --endpoint completions (chat prompts are text)");
  if (a.dataset == "random") {
    RandomDatasetConfig c;
    c.num_prompts = count;
    c.input_len = a.input_len;
    c.output_len = a.output_len;
    c.range_ratio = a.range_ratio;
    c.token_ids = ids;
    c.id_low = a.id_low;
    c.id_high = a.id_high;
    c.seed = a.cfg.seed;
    return make_random_prompts(c, counter);
  }
  if (a.dataset == "sharegpt") {
    WS_CHECK_ARG(!a.dataset_path.empty(), "--dataset sharegpt needs --dataset-path FILE.json");
    WS_CHECK_ARG(!ids, "--random-ids does not apply to ShareGPT prompts");
    ShareGptConfig c;
    c.path = a.dataset_path;
    c.num_prompts = count;
    c.fixed_output_len = a.sharegpt_output_len;
    c.seed = a.cfg.seed;
    return load_sharegpt(c, counter);
  }
  PrefixDatasetConfig c;
  c.num_groups = a.prefix_groups;
  c.users_per_group = a.prefix_users;
  c.system_len = a.prefix_len;
  c.question_len = a.input_len;
  c.output_len = a.output_len;
  c.token_ids = ids;
  c.id_low = a.id_low;
  c.id_high = a.id_high;
  c.seed = a.cfg.seed;
  return make_prefix_prompts(c, counter);
}

nlohmann::json config_json(const BenchArgs& a, size_t num_prompts) {
  const auto& c = a.cfg;
  return {{"url", c.url},
          {"model", c.request.model},
          {"endpoint", a.endpoint},
          {"dataset", a.dataset},
          {"num_prompts", num_prompts},
          {"concurrency", c.concurrency},
          {"request_rate", c.request_rate},
          {"burstiness", c.burstiness},
          {"num_requests", c.num_requests},
          {"duration_s", c.duration_s},
          {"warmup_requests", c.warmup_requests},
          {"request_timeout_s", c.request_timeout_s},
          {"ignore_eos", c.request.ignore_eos},
          {"seed", c.seed}};
}

int run_bench(BenchArgs& a) {
  auto& cfg = a.cfg;
  cfg.request.endpoint = a.endpoint == "chat" ? Endpoint::kChat : Endpoint::kCompletions;
  cfg.request.ignore_eos = !a.no_ignore_eos;
  if (!a.extra_body.empty()) {
    cfg.request.extra_body = nlohmann::json::parse(a.extra_body, nullptr, false);
    WS_CHECK_ARG(cfg.request.extra_body.is_object(), "--extra-body must be a JSON object");
  }
  if (cfg.num_requests == 0 && cfg.duration_s == 0) cfg.num_requests = 100;
  // Fresh prompts for warm-up and every measured request (no accidental prefix-cache hits),
  // cycling in duration mode.
  int64_t count = a.num_prompts > 0      ? a.num_prompts
                  : cfg.num_requests > 0 ? cfg.num_requests + cfg.warmup_requests
                                         : 1000;
  auto prompts = make_prompts(a, count);

  ProgressPrinter printer(stderr, isatty(fileno(stderr)) == 1);
  BenchOutcome out = run_benchmark(cfg, prompts, [&](const Progress& p) { printer.update(p); });
  printer.finish();

  BenchReport rep = make_report(out.records, out.duration_s, a.slo);
  std::printf("%s", report_to_text(rep).c_str());
  std::fflush(stdout);
  for (const auto& r : out.records) {
    if (!r.warmup && !r.ok()) {
      std::fprintf(stderr, "first error (%s): %s\n", r.error_kind.c_str(), r.error_message.c_str());
      break;
    }
  }
  if (!a.output_json.empty()) {
    nlohmann::json j = {{"config", config_json(a, prompts.size())},
                        {"results", report_to_json(rep)}};
    std::ofstream f(a.output_json);
    WS_CHECK_CODE(kNotFound, f.good(), "cannot write {}", a.output_json);
    f << j.dump(2) << "\n";
  }
  if (!a.output_csv.empty()) write_records_csv(a.output_csv, out.records);
  if (!a.plot.empty()) write_bench_plot(a.plot, out.records, out.duration_s);
  return rep.completed > 0 ? 0 : 3;
}

WS_REGISTER_COMMAND(
    "bench", "Benchmark an OpenAI-compatible server (TTFT, ITL, throughput, goodput)",
    [](CLI::App& app) {
      auto a = std::make_shared<BenchArgs>();
      auto& c = a->cfg;
      app.add_option("--url", c.url, "Server base URL, e.g. http://127.0.0.1:8000")->required();
      app.add_option("--model", c.request.model, "Model name sent in each request")->required();
      app.add_option("--endpoint", a->endpoint, "chat or completions")
          ->check(CLI::IsMember({"chat", "completions"}));
      app.add_option("--api-key", c.api_key, "Bearer token (if the server wants one)");
      app.add_option("--dataset", a->dataset, "random, sharegpt or prefix")
          ->check(CLI::IsMember({"random", "sharegpt", "prefix"}));
      app.add_option("--dataset-path", a->dataset_path, "ShareGPT JSON (or JSON lines) file");
      app.add_option(
          "--num-prompts", a->num_prompts,
          "Prompts to generate/load (default: warm-up + requests; 1000 with a duration)");
      app.add_option("--input-len", a->input_len, "random: input tokens; prefix: question tokens")
          ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
      app.add_option("--output-len", a->output_len, "Output tokens (max_tokens)")
          ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
      app.add_option("--random-range-ratio", a->range_ratio,
                     "Lengths uniform in [len * ratio, len] (1: fixed)")
          ->check(CLI::Range(0.0, 1.0));
      app.add_flag("--random-ids", a->random_ids,
                   "Prompts as token ids (completions only): exact input lengths");
      app.add_option("--random-id-low", a->id_low, "Smallest random token id");
      app.add_option("--random-id-high", a->id_high, "Random token ids are < this");
      app.add_option("--sharegpt-output-len", a->sharegpt_output_len,
                     "ShareGPT: fixed output length instead of the reply's length");
      app.add_option("--prefix-groups", a->prefix_groups, "prefix: distinct system prompts");
      app.add_option("--prefix-users", a->prefix_users,
                     "prefix: users (questions) per system prompt");
      app.add_option("--prefix-len", a->prefix_len, "prefix: system prompt tokens");
      app.add_option("--tokenizer", a->tokenizer_dir,
                     "Tokenizer directory: exact token counts for text prompts and ShareGPT");
      auto* conc =
          app.add_option("--concurrency", c.concurrency,
                         "Requests in flight (closed loop); with --request-rate a cap (0: none)")
              ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
      auto* rate = app.add_option("--request-rate", c.request_rate,
                                  "Requests/s with gamma arrivals (Poisson at burstiness 1)")
                       ->check(CLI::PositiveNumber);
      app.add_option("--burstiness", c.burstiness, "Gamma shape of arrival gaps (< 1: burstier)")
          ->check(CLI::PositiveNumber);
      app.add_option("--num-requests", c.num_requests, "Measured requests (default 100)")
          ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
      app.add_option("--duration-s", c.duration_s, "Issue requests for this long instead")
          ->check(CLI::PositiveNumber);
      app.add_option("--warmup-requests", c.warmup_requests, "Unmeasured requests sent first")
          ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
      app.add_option("--request-timeout-s", c.request_timeout_s,
                     "Fail a request after this long without progress (no bytes)")
          ->check(CLI::PositiveNumber);
      app.add_option("--threads", c.threads, "Client io threads")->check(CLI::Range(1, 256));
      app.add_option("--seed", c.seed, "Seed for prompts and arrivals");
      app.add_flag("--no-ignore-eos", a->no_ignore_eos,
                   "Do not send ignore_eos (outputs may end before max_tokens)");
      app.add_option("--extra-body", a->extra_body, "JSON object merged into every request body");
      app.add_option("--slo-ttft-ms", a->slo.ttft_ms, "Goodput SLO: time to first token");
      app.add_option("--slo-itl-ms", a->slo.itl_ms, "Goodput SLO: the request's mean ITL");
      app.add_option("--slo-tpot-ms", a->slo.tpot_ms, "Goodput SLO: time per output token");
      app.add_option("--slo-e2e-ms", a->slo.e2e_ms, "Goodput SLO: end-to-end latency");
      app.add_option("--output-json", a->output_json, "Write config and results as JSON");
      app.add_option("--output-csv", a->output_csv, "Write one CSV row per request");
      app.add_option("--plot", a->plot, "Write latency percentiles and throughput as PNG");
      return [a, rate, conc] {
        // Open loop (a rate) has no concurrency cap unless one is given.
        if (rate->count() > 0 && conc->count() == 0) a->cfg.concurrency = 0;
        return run_bench(*a);
      };
    });

}  // namespace
}  // namespace wideserve::cli
