#include "frontend/migration.h"

#include <algorithm>

#include "common/check.h"

namespace wideserve::frontend {

bool is_worker_loss(const engine::RequestOutput& o) {
  return o.finish == engine::FinishReason::kError && o.worker_lost;
}

void pin_seed_for_migration(engine::SamplingParams& params, uint64_t random_bits) {
  // The sampler treats temperatures this small as greedy (engine/sampler.cpp).
  constexpr float kGreedyTemperature = 1e-5f;
  if (params.seed || params.temperature < kGreedyTemperature) return;
  params.seed = random_bits;
}

std::optional<runtime::GenerateRequest> make_resume_request(const std::vector<int32_t>& prompt,
                                                            const engine::SamplingParams& params,
                                                            int32_t sample_index,
                                                            const std::vector<int32_t>& generated) {
  const auto done = static_cast<int64_t>(generated.size());
  if (done >= params.max_new_tokens) return std::nullopt;
  runtime::GenerateRequest g;
  g.token_ids.reserve(prompt.size() + generated.size());
  g.token_ids = prompt;
  g.token_ids.insert(g.token_ids.end(), generated.begin(), generated.end());
  g.params = params;
  g.params.n = 1;
  g.params.max_new_tokens = static_cast<int32_t>(params.max_new_tokens - done);
  g.params.min_new_tokens =
      static_cast<int32_t>(std::max<int64_t>(0, params.min_new_tokens - done));
  g.sample_index = sample_index;
  g.resumed_tokens = static_cast<int32_t>(done);
  return g;
}

MigrationLedger::MigrationLedger(size_t num_choices, int64_t limit)
    : choices_(num_choices), limit_(limit) {
  WS_CHECK_ARG(limit >= 0, "migration limit must be >= 0 (got {})", limit);
}

void MigrationLedger::set_owner(size_t choice, uint64_t call_id) {
  choices_.at(choice).owner = call_id;
}

void MigrationLedger::record(size_t choice, uint64_t call_id, const std::vector<int32_t>& tokens) {
  Choice& c = choices_.at(choice);
  if (c.owner != call_id) return;
  c.tokens.insert(c.tokens.end(), tokens.begin(), tokens.end());
}

bool MigrationLedger::try_migrate(size_t choice) {
  Choice& c = choices_.at(choice);
  if (c.migrations >= limit_) return false;
  ++c.migrations;
  ++total_;
  return true;
}

}  // namespace wideserve::frontend
