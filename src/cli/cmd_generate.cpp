// `wideserve generate`: greedy continuation of token ids; prefill once, then decode from the cache.
#include <cstdio>

#include "cli/command.h"
#include "cli/token_ids.h"
#include "common/check.h"
#include "model/greedy_generator.h"

namespace wideserve::cli {
namespace {

struct GenerateArgs {
  std::string model_path, token_ids;
  int max_new_tokens = 16;
  bool ignore_eos = true;
};

WS_REGISTER_COMMAND(
    "generate", "Greedy generation from token ids (prints new ids)", [](CLI::App& app) {
      auto a = std::make_shared<GenerateArgs>();
      app.add_option("--model-path", a->model_path, "Checkpoint directory")->required();
      app.add_option("--token-ids", a->token_ids, "Comma-separated prompt token ids")->required();
      app.add_option("--max-new-tokens", a->max_new_tokens, "Tokens to generate")
          ->check(CLI::Range(1, 1 << 20));
      app.add_flag("!--stop-at-eos", a->ignore_eos, "Stop at the config's EOS token (default: no)");
      return [a] {
        auto ids = parse_token_ids(a->token_ids, "--token-ids");
        auto m = model::DeepseekModel::load(a->model_path);
        auto out = model::greedy_generate(*m, ids, a->max_new_tokens, !a->ignore_eos);
        std::string line;
        for (size_t i = 0; i < out.size(); ++i) line += (i ? "," : "") + std::to_string(out[i]);
        std::printf("%s\n", line.c_str());
        return 0;
      };
    });

}  // namespace
}  // namespace wideserve::cli
