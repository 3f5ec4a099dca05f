#include "model/ep_rank.h"

namespace wideserve::model {

void ep_drain(const DeepseekModel& model, EpMoe& ep, kvcache::MlaKvStorage& kv) {
  ForwardOptions opts;
  opts.ep = &ep;
  opts.ep_begun = true;
  std::vector<float> logits;
  while (ep.begin_forward(0, true, /*active=*/false)) model.forward({}, kv, &logits, opts);
}

void ep_run_rank(const DeepseekModel& model, EpMoe& ep, kvcache::MlaKvStorage& kv,
                 const std::function<void()>& work) {
  if (work) work();
  ep_drain(model, ep, kv);
}

}  // namespace wideserve::model
