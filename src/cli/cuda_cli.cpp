#include "cli/cuda_cli.h"

#include <algorithm>

#include "common/check.h"

#ifdef WIDESERVE_HAVE_CUDA
#include "backend/cuda/common/device_info.h"
#include "backend/cuda/model/cuda_model.h"
#include "kvcache/page_pool.h"
#endif

namespace wideserve::cli {

std::string resolve_cli_device(const std::string& device) {
  WS_CHECK_ARG(device == "auto" || device == "cpu" || device == "cuda",
               "--device must be auto, cpu or cuda (got '{}')", device);
  if (device != "auto") return device;
#ifdef WIDESERVE_HAVE_CUDA
  return cuda::device_count() > 0 ? "cuda" : "cpu";
#else
  return "cpu";
#endif
}

#ifdef WIDESERVE_HAVE_CUDA
namespace {

constexpr int64_t kPage = 64;

// A model sized for one sequence of `tokens` (no CUDA graphs: one-off steps).
std::unique_ptr<cuda::CudaModel> load_for(const std::string& model_path, int64_t tokens) {
  WS_CHECK_CODE(kUnavailable, cuda::device_count() > 0, "--device cuda: no GPU is visible");
  cuda::CudaModelOptions o;
  o.page_size = kPage;
  o.num_pages = kvcache::pages_for(tokens, kPage);
  o.max_step_tokens = std::max<int64_t>(tokens, 1);
  o.max_seqs = 1;
  return cuda::CudaModel::load(model_path, o);
}

std::vector<int32_t> all_pages(const cuda::CudaModel& m) {
  std::vector<int32_t> pages(m.num_pages());
  for (int32_t p = 0; p < static_cast<int32_t>(pages.size()); ++p) pages[p] = p;
  return pages;
}

}  // namespace

std::vector<float> cuda_prompt_logits(const std::string& model_path,
                                      const std::vector<int32_t>& ids) {
  auto m = load_for(model_path, static_cast<int64_t>(ids.size()));
  const auto pages = all_pages(*m);
  model::SequenceInput s{ids, 0, pages, true};
  std::vector<float> logits;
  m->forward({&s, 1}, &logits);
  return logits;
}

std::vector<int32_t> cuda_greedy_generate(const std::string& model_path,
                                          const std::vector<int32_t>& ids, int64_t max_new_tokens,
                                          bool stop_at_eos) {
  auto m = load_for(model_path, static_cast<int64_t>(ids.size()) + max_new_tokens);
  const auto pages = all_pages(*m);
  const auto& eos = m->config().eos_token_ids;
  std::vector<int32_t> out, step = ids, next;
  int64_t pos = 0;
  while (static_cast<int64_t>(out.size()) < max_new_tokens) {
    model::SequenceInput s{step, pos, pages, false};
    m->forward_greedy({&s, 1}, &next);
    pos += static_cast<int64_t>(step.size());
    out.push_back(next[0]);
    if (stop_at_eos && std::find(eos.begin(), eos.end(), next[0]) != eos.end()) break;
    step = {next[0]};
  }
  return out;
}

#else

std::vector<float> cuda_prompt_logits(const std::string&, const std::vector<int32_t>&) {
  WS_THROW(kUnimplemented, "--device cuda: this wideserve was built without the CUDA backend");
}

std::vector<int32_t> cuda_greedy_generate(const std::string&, const std::vector<int32_t>&, int64_t,
                                          bool) {
  WS_THROW(kUnimplemented, "--device cuda: this wideserve was built without the CUDA backend");
}

#endif

}  // namespace wideserve::cli
