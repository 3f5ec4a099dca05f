// Builds the worker's model runner for its device (CPU backend or one GPU).
#pragma once

#include <memory>

#include "config/worker_config.h"
#include "engine/model_runner.h"

namespace wideserve::cli {

// --device auto -> cuda when this build has the CUDA backend and a GPU is visible, else cpu.
void resolve_device(config::WorkerConfig& cfg);

// The runner of cfg.device (resolved) over cfg.model_path.
std::unique_ptr<engine::ModelRunner> make_model_runner(const config::WorkerConfig& cfg);

}  // namespace wideserve::cli
