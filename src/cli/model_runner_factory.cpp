#include "cli/model_runner_factory.h"

#include "cli/cuda_cli.h"
#include "common/check.h"
#include "common/logging.h"

#ifdef WIDESERVE_HAVE_CUDA
#include "backend/cuda/model/cuda_model_runner.h"
#endif

namespace wideserve::cli {

void resolve_device(config::WorkerConfig& cfg) {
  cfg.device = resolve_cli_device(cfg.device);
}

std::unique_ptr<engine::ModelRunner> make_model_runner(const config::WorkerConfig& cfg) {
  const auto& e = cfg.engine;
  if (cfg.device == "cuda") {
#ifdef WIDESERVE_HAVE_CUDA
    cuda::CudaRunnerOptions o;
    o.model_path = cfg.model_path;
    o.load_format = cfg.load_format == "dummy" ? "dummy" : "auto";
    o.max_total_tokens = e.max_total_tokens;
    o.page_size = e.page_size;
    o.mem_fraction = e.mem_fraction_static;
    o.max_running_requests = e.max_running_requests;
    o.chunked_prefill_size = e.chunked_prefill_size;
    o.context_length = e.context_length;
    // SGLang's default graph range on one GPU: up to 160 sequences (or --cuda-graph-max-bs).
    o.cuda_graph_max_bs =
        cfg.cuda.disable_cuda_graph ? 0 : cfg.cuda.cuda_graph_max_bs.value_or(160);
    return cuda::make_cuda_model_runner(o);
#else
    WS_THROW(kUnimplemented, "--device cuda: this wideserve was built without the CUDA backend");
#endif
  }
  WS_CHECK_ARG(cfg.load_format != "dummy",
               "--load-format dummy is for the GPU backend (--device cuda)");
  return engine::make_cpu_model_runner(cfg.model_path, e.max_total_tokens, e.page_size);
}

}  // namespace wideserve::cli
