// `wideserve tokenize`: JSON strings (one per line) -> JSON id arrays, or an encode benchmark.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/line_io.h"
#include "common/check.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::cli {
namespace {

void append_ids(std::string& out, const std::vector<int32_t>& ids) {
  out.push_back('[');
  char buf[16];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), ids[i]);
    out.append(buf, end);
  }
  out += "]\n";
}

// One input line as a JSON string; errors name the line.
std::string parse_line(const std::string& line, size_t line_no) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    WS_THROW(kInvalidArgument, "line {}: not valid JSON: {}", line_no, e.what());
  }
  WS_CHECK_ARG(j.is_string(), "line {}: expected a JSON string, got {}", line_no, j.type_name());
  return j.get<std::string>();
}

// Encode-only timing over a file of JSON strings: excludes startup, loading and JSON parsing.
int run_bench(const tokenizer::Tokenizer& tok, const std::string& path, bool add_special,
              int iters) {
  std::ifstream in(path);
  WS_CHECK_CODE(kNotFound, in.good(), "cannot open bench corpus {}", path);
  std::vector<std::string> corpus;
  std::string line;
  size_t bytes = 0;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    corpus.push_back(parse_line(line, n));
    bytes += corpus.back().size();
  }
  size_t tokens = 0;
  for (const auto& s : corpus) tokens += tok.encode(s, add_special).size();  // warm-up pass
  double best = 1e30, total = 0;
  for (int it = 0; it < iters; ++it) {
    auto t0 = std::chrono::steady_clock::now();
    size_t n = 0;
    for (const auto& s : corpus) n += tok.encode(s, add_special).size();
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    WS_CHECK(n == tokens, "encode is not deterministic");
    best = std::min(best, sec);
    total += sec;
  }
  nlohmann::json r = {{"strings", corpus.size()},
                      {"bytes", bytes},
                      {"tokens", tokens},
                      {"iters", iters},
                      {"best_seconds", best},
                      {"mean_seconds", total / iters},
                      {"mb_per_s", bytes / best / 1e6},
                      {"tokens_per_s", tokens / best}};
  std::printf("%s\n", r.dump().c_str());
  return 0;
}

WS_REGISTER_COMMAND(
    "tokenize", "Encode JSON strings (one per line on stdin) to JSON id arrays", [](CLI::App& app) {
      auto dir = std::make_shared<std::string>();
      auto add_special = std::make_shared<bool>(false);
      auto bench = std::make_shared<std::string>();
      auto iters = std::make_shared<int>(5);
      app.add_option("--tokenizer", *dir, "Directory with tokenizer.json")->required();
      app.add_flag("--add-special-tokens", *add_special,
                   "Apply the post-processor (BOS etc.) as HF encode(add_special_tokens=True)");
      app.add_option("--bench", *bench,
                     "Time encode over FILE (JSON strings per line) and print a JSON report");
      app.add_option("--bench-iters", *iters, "Timed passes for --bench (after one warm-up)");
      return [=] {
        auto tok = tokenizer::Tokenizer::from_dir(*dir);
        if (!bench->empty()) return run_bench(*tok, *bench, *add_special, std::max(1, *iters));
        for_each_stdin_line([&](const std::string& line, size_t n, std::string& out) {
          append_ids(out, tok->encode(parse_line(line, n), *add_special));
        });
        return 0;
      };
    });

}  // namespace
}  // namespace wideserve::cli
