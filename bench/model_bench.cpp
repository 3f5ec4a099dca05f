// Prefill and decode throughput of the CPU model: B sequences of L prompt tokens prefilled in one
// step, then S decode steps of B tokens each (reading the paged latent cache).
// Usage: model_bench --model-path DIR [--batch 1,8] [--prompt-len 128] [--decode-steps 32]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "common/check.h"
#include "kvcache/page_pool.h"
#include "model/deepseek_model.h"
#include "model/greedy_generator.h"

using namespace wideserve;

int main(int argc, char** argv) {
  CLI::App app{"wideserve CPU model benchmark"};
  std::string model_path;
  std::vector<int> batches = {1, 8};
  int prompt_len = 128, steps = 32, repeats = 3;
  app.add_option("--model-path", model_path)->required();
  app.add_option("--batch", batches)->delimiter(',');
  app.add_option("--prompt-len", prompt_len)->check(CLI::Range(1, 1 << 16));
  app.add_option("--decode-steps", steps)->check(CLI::Range(1, 1 << 16));
  app.add_option("--repeats", repeats)->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  try {
    auto m = model::DeepseekModel::load(model_path);
    const auto& c = m->config();
    std::printf(
        "| batch | prompt len | prefill tok/s | decode steps | decode tok/s | decode ms/step |\n");
    std::printf("|---|---|---|---|---|---|\n");
    for (int B : batches) {
      const int64_t page = 64, per_seq = kvcache::pages_for(prompt_len + steps, page);
      double best_pre = 0, best_dec = 0;
      for (int rep = 0; rep < repeats; ++rep) {
        kvcache::MlaKvStorage kv(c.num_hidden_layers, per_seq * B, page, c.kv_cache_dim());
        std::vector<std::vector<int32_t>> prompts(B), pages(B);
        for (int b = 0; b < B; ++b) {
          for (int i = 0; i < prompt_len; ++i)
            prompts[b].push_back(static_cast<int32_t>((b * 7919 + i * 104729) % c.vocab_size));
          for (int64_t p = 0; p < per_seq; ++p)
            pages[b].push_back(static_cast<int32_t>(b * per_seq + p));
        }
        std::vector<model::SequenceInput> in;
        for (int b = 0; b < B; ++b) in.push_back({prompts[b], 0, pages[b], false});
        std::vector<float> logits;
        auto t0 = std::chrono::steady_clock::now();
        m->forward(in, kv, &logits);
        auto t1 = std::chrono::steady_clock::now();
        std::vector<int32_t> next(B);
        for (int s = 0; s < steps; ++s) {
          in.clear();
          for (int b = 0; b < B; ++b) {
            next[b] = model::argmax(
                {logits.data() + b * c.vocab_size, static_cast<size_t>(c.vocab_size)});
            in.push_back({{&next[b], 1}, prompt_len + s, pages[b], false});
          }
          m->forward(in, kv, &logits);
        }
        auto t2 = std::chrono::steady_clock::now();
        double pre = std::chrono::duration<double>(t1 - t0).count();
        double dec = std::chrono::duration<double>(t2 - t1).count();
        best_pre = std::max(best_pre, B * prompt_len / pre);
        best_dec = std::max(best_dec, B * steps / dec);
      }
      std::printf("| %d | %d | %.0f | %d | %.1f | %.2f |\n", B, prompt_len, best_pre, steps,
                  best_dec, 1000.0 * B / best_dec);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
