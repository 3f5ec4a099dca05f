// Request migration (--migration-limit): when a worker dies mid-stream, each open choice is
// replayed on another worker as prompt + the tokens it already produced, with fewer max_tokens
// and the same sampling parameters, so the client sees one continuous stream. This file holds
// the bookkeeping (what each choice produced, who owns it, how often it moved) and the building
// of the continuation request; the completion handler drives it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"
#include "engine/sampling_params.h"
#include "runtime/messages.h"

namespace wideserve::frontend {

// Whether an output ends its sample because the worker was lost (request plane failed, heartbeat
// or lease gone) rather than through the request's own fault: only those may migrate.
bool is_worker_loss(const engine::RequestOutput& o);

// With migration on, an unseeded random request gets a seed chosen here, so that a replay on
// another worker continues the same random stream (greedy requests are left alone).
void pin_seed_for_migration(engine::SamplingParams& params, uint64_t random_bits);

// The request that continues one choice on another worker: prompt + generated as token ids,
// n = 1 with the choice's sample index (its seed stream), max/min tokens reduced by what was
// generated, resumed_tokens = generated.size(). nullopt when nothing is left to generate (the
// choice reached max_tokens: it ends with finish "length").
std::optional<runtime::GenerateRequest> make_resume_request(const std::vector<int32_t>& prompt,
                                                            const engine::SamplingParams& params,
                                                            int32_t sample_index,
                                                            const std::vector<int32_t>& generated);

// Per-request ledger: for every choice the tokens delivered so far, the engine call that owns it
// now (outputs of any other call for that choice are stale), and its migrations against the limit.
class MigrationLedger {
 public:
  MigrationLedger(size_t num_choices, int64_t limit);

  // The call now producing `choice` (set at the first dispatch and at every migration).
  void set_owner(size_t choice, uint64_t call_id);
  uint64_t owner(size_t choice) const { return choices_.at(choice).owner; }
  // Records the tokens of one output of the owning call (ignored from any other call).
  void record(size_t choice, uint64_t call_id, const std::vector<int32_t>& tokens);
  const std::vector<int32_t>& tokens(size_t choice) const { return choices_.at(choice).tokens; }
  // True (and counted) when the choice may move once more under the limit.
  bool try_migrate(size_t choice);
  int64_t migrations(size_t choice) const { return choices_.at(choice).migrations; }
  int64_t total_migrations() const { return total_; }
  int64_t limit() const { return limit_; }

 private:
  struct Choice {
    std::vector<int32_t> tokens;
    uint64_t owner = 0;
    int64_t migrations = 0;
  };
  std::vector<Choice> choices_;
  int64_t limit_;
  int64_t total_ = 0;
};

}  // namespace wideserve::frontend
