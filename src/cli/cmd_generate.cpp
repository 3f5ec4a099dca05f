// `wideserve generate`: greedy continuation of token ids; prefill once, then decode from the cache.
#include <cstdio>

#include "cli/command.h"
#include "cli/cuda_cli.h"
#include "cli/ep_flags.h"
#include "cli/token_ids.h"
#include "common/check.h"
#include "model/ep_rank.h"
#include "model/greedy_generator.h"

namespace wideserve::cli {
namespace {

struct GenerateArgs {
  std::string model_path, token_ids;
  int max_new_tokens = 16;
  bool ignore_eos = true;
  std::string device = "cpu";
  EpArgs ep;
};

WS_REGISTER_COMMAND(
    "generate", "Greedy generation from token ids (prints new ids)", [](CLI::App& app) {
      auto a = std::make_shared<GenerateArgs>();
      app.add_option("--model-path", a->model_path, "Checkpoint directory")->required();
      app.add_option("--token-ids", a->token_ids, "Comma-separated prompt token ids")->required();
      app.add_option("--max-new-tokens", a->max_new_tokens, "Tokens to generate")
          ->check(CLI::Range(1, 1 << 20));
      app.add_flag("!--stop-at-eos", a->ignore_eos, "Stop at the config's EOS token (default: no)");
      app.add_option("--device", a->device,
                     "cpu (the reference backend) | cuda (the GPU backend) | auto");
      add_ep_flags(app, a->ep);
      return [a] {
        auto ids = parse_token_ids(a->token_ids, "--token-ids");
        std::vector<int32_t> out;
        const bool gpu = resolve_cli_device(a->device) == "cuda";
        WS_CHECK_ARG(!gpu || ep_world_size(a->ep.parallel, a->ep.moe) == 1,
                     "--device cuda runs one rank (wide EP is on the CPU backend)");
        std::unique_ptr<model::DeepseekModel> m;
        if (!gpu) m = model::DeepseekModel::load(a->model_path);
        if (gpu) {
          out = cuda_greedy_generate(a->model_path, ids, a->max_new_tokens, !a->ignore_eos);
        } else if (ep_world_size(a->ep.parallel, a->ep.moe) == 1) {
          out = model::greedy_generate(*m, ids, a->max_new_tokens, !a->ignore_eos);
        } else {
          // Rank 0 generates; every other rank joins its MoE exchanges until it is done.
          bool mine = false;
          run_ep_ranks(*m, a->ep, [&](int rank, model::EpMoe& ep) {
            const auto& c = m->config();
            kvcache::MlaKvStorage kv(c.num_hidden_layers, 1, 1, c.kv_cache_dim());
            model::ep_run_rank(*m, ep, kv, [&] {
              if (rank != 0) return;
              model::ForwardOptions o;
              o.ep = &ep;
              out = model::greedy_generate(*m, ids, a->max_new_tokens, !a->ignore_eos, nullptr, o);
              mine = true;
            });
          });
          if (!mine) return 0;  // rank 0 lives in another node's process
        }
        std::string line;
        for (size_t i = 0; i < out.size(); ++i) line += (i ? "," : "") + std::to_string(out[i]);
        std::printf("%s\n", line.c_str());
        return 0;
      };
    });

}  // namespace
}  // namespace wideserve::cli
