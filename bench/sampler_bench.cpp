// Sampler cost per call on one vocab-sized row, for each sampling mode (one thread).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "engine/sampler.h"

using wideserve::engine::sample;
using wideserve::engine::SamplerState;
using wideserve::engine::SamplingParams;

int main(int argc, char** argv) {
  CLI::App app{"wideserve sampler benchmark"};
  int vocab = 129280;
  int iters = 500;
  int prompt_len = 2000;
  app.add_option("--vocab", vocab)->check(CLI::Range(2, 1 << 22));
  app.add_option("--iters", iters)->check(CLI::Range(1, 1000000));
  app.add_option("--prompt-len", prompt_len, "prompt tokens for the repetition penalty");
  CLI11_PARSE(app, argc, argv);

  std::mt19937 gen(1);
  std::vector<int32_t> prompt(prompt_len);
  for (int32_t& t : prompt) t = static_cast<int32_t>(gen() % vocab);
  struct Case {
    std::string name;
    SamplingParams p;
  };
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SamplingParams temp;
  temp.temperature = 0.7f;
  std::vector<Case> cases = {{"greedy", greedy}, {"temperature", temp}};
  cases.push_back({"greedy+top_logprobs=5", greedy});
  cases.back().p.top_logprobs = 5;
  cases.push_back({"top_k=50", temp});
  cases.back().p.top_k = 50;
  cases.push_back({"top_p=0.9", temp});
  cases.back().p.top_p = 0.9f;
  cases.push_back({"min_p=0.05", temp});
  cases.back().p.min_p = 0.05f;
  cases.push_back({"k50+p0.9+min_p+penalties", temp});
  cases.back().p.top_k = 50;
  cases.back().p.top_p = 0.9f;
  cases.back().p.min_p = 0.05f;
  cases.back().p.repetition_penalty = 1.1f;
  cases.back().p.frequency_penalty = 0.2f;

  fmt::print("vocab {}, {} iterations per case; logits ~ N(0, sigma)\n", vocab, iters);
  fmt::print("{:<28} {:>12} {:>12}\n", "mode", "sigma=3 us", "sigma=0.5 us");
  for (const Case& c : cases) {
    fmt::print("{:<28}", c.name);
    for (float sigma : {3.0f, 0.5f}) {  // peaked and flat rows
      std::normal_distribution<float> dist(0.0f, sigma);
      std::vector<float> row(vocab), logits(vocab);
      for (float& x : row) x = dist(gen);
      SamplingParams p = c.p;
      p.seed = 1;
      SamplerState st(p, prompt, 0);
      double total_us = 0.0;
      for (int i = 0; i < iters; ++i) {
        logits = row;
        auto t0 = std::chrono::steady_clock::now();
        int32_t token = sample(logits, p, st).token;
        total_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                        .count();
        st.append(token);
      }
      fmt::print(" {:>12.1f}", total_us / iters);
    }
    fmt::print("\n");
  }
  return 0;
}
