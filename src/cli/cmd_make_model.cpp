// `wideserve make-model`: write a DeepSeek-V3-architecture checkpoint with random weights.
#include "cli/command.h"
#include "model/make_model.h"

namespace wideserve::cli {
namespace {

WS_REGISTER_COMMAND(
    "make-model", "Write a random-weight DeepSeek-V3 checkpoint directory", [](CLI::App& app) {
      auto o = std::make_shared<model::MakeModelOptions>();
      app.add_option("--preset", o->preset,
                     "tiny (CI-sized), v2-lite (DeepSeek-V2-Lite dimensions, --config-only) or v3 "
                     "(full DeepSeek-V3 dimensions)")
          ->check(CLI::IsMember({"tiny", "v2-lite", "v3"}));
      app.add_option("--out", o->out_dir, "Output directory")->required();
      app.add_option("--seed", o->seed, "Random seed");
      app.add_flag("--fp8", o->fp8,
                   "FP8 e4m3 weights with 128x128 block scales (DeepSeek-R1 style)");
      app.add_option("--layout", o->layout,
                     "hf (fused experts, transformers 5) or deepseek (per-expert, sharded)")
          ->check(CLI::IsMember({"hf", "deepseek"}));
      app.add_option("--layers", o->layers, "Decoder layers (default: the preset's)")
          ->check(CLI::Range(1, 1000));
      app.add_flag("--config-only", o->config_only,
                   "Write config.json and the tokenizer only: serve it with --load-format dummy "
                   "(random weights drawn on the GPU)");
      return [o] {
        model::make_model(*o);
        return 0;
      };
    });

}  // namespace
}  // namespace wideserve::cli
