// Engine throughput versus batch size on the CPU model: N requests of fixed prompt and output
// length run through EngineCore with --max-running-requests = batch; reports output tokens/s.
// Usage: engine_bench --model-path DIR [--batch 1,4,16,64] [--prompt-len 64] [--output-len 32]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "common/check.h"
#include "engine/engine_core.h"

using namespace wideserve;

int main(int argc, char** argv) {
  CLI::App app{"wideserve engine throughput benchmark"};
  std::string model_path;
  std::vector<int> batches = {1, 4, 16, 64};
  int prompt_len = 64, output_len = 32, requests_per_batch = 2;
  app.add_option("--model-path", model_path)->required();
  app.add_option("--batch", batches)->delimiter(',');
  app.add_option("--prompt-len", prompt_len)->check(CLI::Range(1, 1 << 16));
  app.add_option("--output-len", output_len)->check(CLI::Range(1, 1 << 16));
  app.add_option("--waves", requests_per_batch, "requests = waves x batch")
      ->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  try {
    std::printf(
        "| max running (batch) | requests | prompt | output | wall s | output tok/s | total tok/s "
        "|\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (int B : batches) {
      engine::EngineConfig cfg;
      cfg.max_running_requests = B;
      cfg.page_size = 16;
      cfg.disable_radix_cache = true;  // distinct prompts anyway; measure compute, not cache hits
      cfg.decode_log_interval = 1 << 30;
      const int64_t pool = static_cast<int64_t>(B) * (prompt_len + output_len + 16);
      engine::EngineCore e(cfg, engine::make_cpu_model_runner(model_path, pool, cfg.page_size));
      const int n = B * requests_per_batch;
      for (int i = 0; i < n; ++i) {
        engine::NewRequest r;
        r.id = i + 1;
        for (int t = 0; t < prompt_len; ++t)
          r.prompt.push_back((i * 7919 + t * 104729 + 11) % e.vocab_size());
        r.params.temperature = 0.0f;
        r.params.max_new_tokens = output_len;
        r.params.ignore_eos = true;
        e.add_request(std::move(r));
      }
      auto t0 = std::chrono::steady_clock::now();
      int64_t out_tokens = 0;
      while (e.has_work())
        for (const auto& o : e.step()) out_tokens += static_cast<int64_t>(o.new_tokens.size());
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("| %d | %d | %d | %d | %.2f | %.1f | %.1f |\n", B, n, prompt_len, output_len, s,
                  out_tokens / s, (out_tokens + static_cast<double>(n) * prompt_len) / s);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
