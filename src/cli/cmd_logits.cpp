// `wideserve logits`: full-sequence logits of a prompt, as little-endian float32 [ids, vocab].
#include <cstdio>

#include "cli/command.h"
#include "cli/cuda_cli.h"
#include "cli/ep_flags.h"
#include "cli/token_ids.h"
#include "common/check.h"
#include "kvcache/page_pool.h"
#include "model/deepseek_model.h"
#include "model/ep_rank.h"

namespace wideserve::cli {
namespace {

void write_logits(const std::string& path, const std::vector<float>& logits) {
  FILE* f = std::fopen(path.c_str(), "wb");
  WS_CHECK_ARG(f, "--out: cannot write {}", path);
  bool ok = std::fwrite(logits.data(), sizeof(float), logits.size(), f) == logits.size();
  ok = std::fclose(f) == 0 && ok;
  WS_CHECK_CODE(kResourceExhausted, ok, "writing {} failed", path);
}

struct LogitsArgs {
  std::string model_path, token_ids, out, attention = "auto", device = "cpu";
  EpArgs ep;
};

WS_REGISTER_COMMAND(
    "logits", "Compute full-sequence logits of token ids (float32 file)", [](CLI::App& app) {
      auto a = std::make_shared<LogitsArgs>();
      app.add_option("--model-path", a->model_path, "Checkpoint directory")->required();
      app.add_option("--token-ids", a->token_ids, "Comma-separated prompt token ids")->required();
      app.add_option("--out", a->out, "Output file: little-endian float32 [ids, vocab]")
          ->required();
      app.add_option("--attention", a->attention, "auto|expanded|absorbed")
          ->check(CLI::IsMember({"auto", "expanded", "absorbed"}));
      app.add_option("--device", a->device,
                     "cpu (the reference backend) | cuda (the GPU backend) | auto");
      add_ep_flags(app, a->ep);
      return [a] {
        auto ids = parse_token_ids(a->token_ids, "--token-ids");
        std::vector<float> logits;
        if (resolve_cli_device(a->device) == "cuda") {
          WS_CHECK_ARG(ep_world_size(a->ep.parallel, a->ep.moe) == 1,
                       "--device cuda runs one rank (wide EP is on the CPU backend)");
          logits = cuda_prompt_logits(a->model_path, ids);
          write_logits(a->out, logits);
          return 0;
        }
        auto m = model::DeepseekModel::load(a->model_path);
        const auto& c = m->config();
        const int64_t page = 64;
        kvcache::MlaKvStorage kv(c.num_hidden_layers, kvcache::pages_for(ids.size(), page), page,
                                 c.kv_cache_dim());
        std::vector<int32_t> pages;
        for (int32_t p = 0; p < kv.num_pages(); ++p) pages.push_back(p);
        model::SequenceInput s{ids, 0, pages, true};
        model::ForwardOptions opts;
        if (a->attention == "expanded") opts.attention = model::AttentionMode::kExpanded;
        if (a->attention == "absorbed") opts.attention = model::AttentionMode::kAbsorbed;
        if (ep_world_size(a->ep.parallel, a->ep.moe) == 1) {
          m->forward({&s, 1}, kv, &logits, opts);
        } else {
          // Rank 0 computes the prompt; every other rank joins its MoE exchanges.
          bool mine = false;
          run_ep_ranks(*m, a->ep, [&](int rank, model::EpMoe& ep) {
            kvcache::MlaKvStorage rkv(c.num_hidden_layers, kv.num_pages(), page, c.kv_cache_dim());
            model::ep_run_rank(*m, ep, rkv, [&] {
              if (rank != 0) return;
              model::ForwardOptions o = opts;
              o.ep = &ep;
              m->forward({&s, 1}, rkv, &logits, o);
              mine = true;
            });
          });
          if (!mine) return 0;  // another node's process writes the file
        }
        write_logits(a->out, logits);
        return 0;
      };
    });

}  // namespace
}  // namespace wideserve::cli
