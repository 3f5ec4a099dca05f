// engine::ModelRunner on one GPU: the CudaModel with its bf16 latent KV pool.
#pragma once

#include <memory>
#include <string>

#include "engine/model_runner.h"

namespace wideserve::cuda {

// What the runner is built from (the worker's engine flags).
struct CudaRunnerOptions {
  std::string model_path;
  std::string load_format = "auto";  // auto | dummy
  int64_t max_total_tokens = 0;      // 0 = from mem_fraction
  int64_t page_size = 64;
  double mem_fraction = 0.0;  // 0 = default 0.85
  int64_t max_running_requests = 256;
  int64_t chunked_prefill_size = 8192;
  int64_t context_length = 0;
  int64_t cuda_graph_max_bs = 0;  // 0 = no CUDA graphs
};

std::unique_ptr<engine::ModelRunner> make_cuda_model_runner(const CudaRunnerOptions& o);

}  // namespace wideserve::cuda
