// Loading of HF-transformers reference fixtures (tests/fixtures/<name>/reference.json + logits).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wideserve::testing {

struct ReferenceCase {
  std::vector<int32_t> prompt;
  std::vector<float> logits;  // [prompt.size(), vocab]
  int64_t vocab = 0;
  std::vector<int32_t> greedy;
  std::vector<float> margins;
  // From hf_sensitivity.json (tools/hf_sensitivity.py), -1 when absent: the share of logits rows
  // that HF transformers' own bfloat16 run puts over 6% from the reference (routing flips), and
  // with the GPU backend's FP8 activation quantization emulated, over 50%.
  double hf_bf16_frac_over = -1, hf_fp8_frac_over = -1;
  // Greedy steps HF's bfloat16 run follows before leaving the reference (-1 when absent).
  int64_t hf_bf16_greedy_follows = -1;
};

inline std::vector<ReferenceCase> load_reference(const std::string& dir) {
  std::ifstream f(dir + "/reference.json");
  auto j = nlohmann::json::parse(f);
  std::vector<ReferenceCase> out;
  for (const auto& c : j["cases"]) {
    ReferenceCase r;
    r.prompt = c["prompt"].get<std::vector<int32_t>>();
    auto shape = c["logits_shape"].get<std::vector<int64_t>>();
    r.vocab = shape[1];
    r.logits.resize(shape[0] * shape[1]);
    std::ifstream lf(dir + "/" + c["logits_file"].get<std::string>(), std::ios::binary);
    lf.read(reinterpret_cast<char*>(r.logits.data()), r.logits.size() * sizeof(float));
    for (const auto& g : c["greedy"]) {
      r.greedy.push_back(g[0].get<int32_t>());
      r.margins.push_back(g[1].get<float>());
    }
    out.push_back(std::move(r));
  }
  if (std::ifstream sf(dir + "/hf_sensitivity.json"); sf) {
    auto sj = nlohmann::json::parse(sf);
    for (size_t i = 0; i < out.size() && i < sj["cases"].size(); ++i) {
      const auto& c = sj["cases"][i];
      out[i].hf_bf16_frac_over = c["bf16"]["frac_over"].get<double>();
      if (c.contains("fp8_activations"))
        out[i].hf_fp8_frac_over = c["fp8_activations"]["frac_over"].get<double>();
      if (c.contains("bf16_greedy_follows"))
        out[i].hf_bf16_greedy_follows = c["bf16_greedy_follows"].get<int64_t>();
    }
  }
  return out;
}

// Every fixture directory holding a reference.json.
inline std::vector<std::string> fixture_dirs() {
  std::vector<std::string> dirs;
  for (const auto& e : std::filesystem::directory_iterator(WS_TEST_FIXTURES))
    if (std::filesystem::exists(e.path() / "reference.json")) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace wideserve::testing
