// Writes DeepSeek-V3-architecture checkpoints with random weights (for tests, demos, benchmarks):
// config.json, safetensors in the HF (fused experts) or DeepSeek (per-expert, sharded) layout,
// BF16 or FP8 with 128x128 block scales, and the DeepSeek-V3 tokenizer files.
#pragma once

#include <cstdint>
#include <string>

namespace wideserve::model {

// What to write.
struct MakeModelOptions {
  std::string preset = "tiny";  // tiny | v2-lite | v3
  std::string out_dir;
  uint64_t seed = 0;
  bool fp8 = false;
  std::string layout = "hf";  // hf | deepseek
  int64_t layers = 0;         // 0 = preset default
  bool config_only = false;   // config.json + tokenizer, no weights (--load-format dummy)
};

// Writes the checkpoint; throws on a bad option (naming it) or an I/O failure.
void make_model(const MakeModelOptions& opts);

}  // namespace wideserve::model
