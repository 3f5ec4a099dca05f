// `wideserve logits` / `generate` on the GPU backend (--device cuda): the same prompt through
// cuda::CudaModel, so one prompt can be checked on both backends from the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wideserve::cli {

// "auto" -> "cuda" when this build has the CUDA backend and a GPU is visible, else "cpu"; "cpu"
// and "cuda" stay; anything else throws naming --device.
std::string resolve_cli_device(const std::string& device);

// Full-sequence logits [ids, vocab] of the prompt on the GPU (throws kUnimplemented in a build
// without the CUDA backend).
std::vector<float> cuda_prompt_logits(const std::string& model_path,
                                      const std::vector<int32_t>& ids);

// Greedy continuation on the GPU: prefill, then one decode step per token from the cache.
std::vector<int32_t> cuda_greedy_generate(const std::string& model_path,
                                          const std::vector<int32_t>& ids, int64_t max_new_tokens,
                                          bool stop_at_eos);

}  // namespace wideserve::cli
