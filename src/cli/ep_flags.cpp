#include "cli/ep_flags.h"

#include <cstdlib>
#include <thread>

#include "common/check.h"
#include "common/logging.h"
#include "dist/launch.h"

namespace wideserve::cli {

void add_ep_flags(CLI::App& app, EpArgs& a) {
  auto& p = a.parallel;
  auto& m = a.moe;
  const std::string g = "Expert parallelism";
  app.add_option("--tp-size,--tensor-parallel-size", p.tp_size, "Ranks (with DP attention)")
      ->group(g);
  app.add_option("--dp-size,--data-parallel-size", p.dp_size, "Attention DP ranks")->group(g);
  app.add_option("--ep-size,--expert-parallel-size", p.ep_size, "EP ranks (1 or --tp-size)")
      ->group(g);
  app.add_flag("--enable-dp-attention", p.enable_dp_attention, "Attention data parallel")->group(g);
  app.add_flag("--enable-dp-lm-head", p.enable_dp_lm_head,
               "Each rank applies the whole LM head to its rows (default: split by vocabulary)")
      ->group(g);
  app.add_option("--nnodes", p.nnodes, "Processes (nodes) the ranks are spread over")->group(g);
  app.add_option("--node-rank", p.node_rank, "This process's node index")->group(g);
  app.add_option("--dist-init-addr", p.dist_init_addr, "HOST:PORT of node 0's rendezvous")
      ->group(g);
  app.add_option("--moe-a2a-backend", m.a2a_backend, "none|deepep")->group(g);
  app.add_option("--deepep-mode", m.deepep_mode, "normal|low_latency|auto")->group(g);
  app.add_option("--ep-num-redundant-experts", m.ep_num_redundant_experts, "Redundant replicas")
      ->group(g);
  app.add_option("--ep-dispatch-algorithm", m.ep_dispatch_algorithm, "static|dynamic")->group(g);
  app.add_option("--eplb-algorithm", m.eplb_algorithm, "deepseek|deepseek_hierarchical|auto")
      ->group(g);
  app.add_option("--init-expert-location", m.init_expert_location, "trivial or a placement file")
      ->group(g);
  app.add_flag("--enable-eplb", m.enable_eplb, "Rebalance experts online")->group(g);
  app.add_option("--eplb-rebalance-num-iterations", m.eplb_rebalance_num_iterations,
                 "Forwards between rebalances")
      ->group(g);
  app.add_flag("--ep-metrics", a.print_metrics, "Print per-layer expert load imbalance (stderr)")
      ->group(g);
}

int ep_world_size(const config::ParallelConfig& p, const config::MoeConfig& m) {
  WS_CHECK_ARG(p.tp_size >= 1 && p.dp_size >= 1 && p.ep_size >= 1, "sizes must be >= 1");
  WS_CHECK_ARG(m.a2a_backend == "none" || m.a2a_backend == "deepep",
               "--moe-a2a-backend {} is not available here (none, deepep)", m.a2a_backend);
  const int64_t n = p.tp_size;
  if (n == 1) {
    WS_CHECK_ARG(p.dp_size == 1 && p.ep_size == 1 && p.nnodes == 1,
                 "--dp-size/--ep-size/--nnodes > 1 need --tp-size N --dp-size N "
                 "--enable-dp-attention");
    return 1;
  }
  WS_CHECK_CODE(kUnimplemented, p.enable_dp_attention && p.dp_size == n,
                "not supported yet: --tp-size {} without --enable-dp-attention --dp-size {} "
                "(attention tensor parallelism; ranks run data-parallel attention only)",
                n, n);
  WS_CHECK_ARG(p.ep_size == 1 || p.ep_size == n, "--ep-size must be 1 or --tp-size ({}), got {}", n,
               p.ep_size);
  WS_CHECK_ARG(n % p.nnodes == 0, "--tp-size {} is not divisible by --nnodes {}", n, p.nnodes);
  return static_cast<int>(n);
}

model::EpOptions ep_options(const config::ParallelConfig& p, const config::MoeConfig& m,
                            int64_t max_tokens) {
  model::EpOptions o;
  // --moe-a2a-backend none moves tokens the same way as DeepEP's normal mode.
  o.deepep_mode =
      m.a2a_backend == "deepep" ? moe::parse_deepep_mode(m.deepep_mode) : moe::DeepepMode::kNormal;
  o.dispatch = moe::parse_dispatch_algorithm(m.ep_dispatch_algorithm);
  o.max_dispatch_tokens_per_rank = max_tokens;
  o.num_redundant_experts = static_cast<int32_t>(m.ep_num_redundant_experts);
  o.init_expert_location = m.init_expert_location;
  o.eplb_algorithm = moe::parse_eplb_algorithm(m.eplb_algorithm);
  o.num_nodes = static_cast<int32_t>(p.nnodes);
  o.rebalance_every = m.enable_eplb ? m.eplb_rebalance_num_iterations : 0;
  o.vocab_parallel_head = !p.enable_dp_lm_head;
  return o;
}

void run_ep_ranks(const model::DeepseekModel& model, const EpArgs& a,
                  const std::function<void(int, model::EpMoe&)>& fn) {
  dist::LaunchOptions lo;
  lo.world_size = ep_world_size(a.parallel, a.moe);
  lo.nnodes = static_cast<int>(a.parallel.nnodes);
  lo.node_rank = static_cast<int>(a.parallel.node_rank);
  lo.dist_init_addr = a.parallel.dist_init_addr;
  int64_t max_tokens = 128;
  if (const char* v = std::getenv("SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK"); v && *v)
    max_tokens = config::parse_env_int("SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK", v, 1);
  const model::EpOptions eo = ep_options(a.parallel, a.moe, max_tokens);
  auto ranks = dist::launch_local_ranks(lo);
  std::vector<std::thread> ts;
  std::vector<std::exception_ptr> errs(ranks.groups.size());
  for (size_t i = 0; i < ranks.groups.size(); ++i)
    ts.emplace_back([&, i] {
      try {
        model::EpMoe ep(model.config(), model.weights(), *ranks.groups[i], eo);
        fn(ranks.first_rank + static_cast<int>(i), ep);
        if (a.print_metrics) {
          auto m = ep.metrics();
          if (ep.group().rank() == 0) {
            std::string imb;
            for (double x : m.layer_imbalance)
              imb += fmt::format("{}{:.3f}", imb.empty() ? "" : ",", x);
            std::fprintf(stderr,
                         "ep: ranks=%d forwards=%lld tokens_dispatched=%lld bytes=%lld "
                         "rebalances=%lld layer_imbalance=[%s]\n",
                         ep.group().size(), static_cast<long long>(m.forwards),
                         static_cast<long long>(m.tokens_dispatched),
                         static_cast<long long>(m.bytes_sent), static_cast<long long>(m.rebalances),
                         imb.c_str());
          }
        }
      } catch (...) {
        errs[i] = std::current_exception();
      }
    });
  for (auto& t : ts) t.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
}

}  // namespace wideserve::cli
