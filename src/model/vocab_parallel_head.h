// The LM head split by vocabulary over an expert-parallel group (SGLang's layout under DP
// attention without --enable-dp-lm-head): rank r owns vocabulary rows [V r / N, V (r+1) / N) of
// the head; every rank's final-normed rows are all-gathered, each rank computes its slice of
// everybody's logits, and an all-to-all returns each rank its own rows' full logits.
#pragma once

#include <cstdint>
#include <utility>

#include "dist/process_group.h"

namespace wideserve::model {

// Rank r's vocabulary slice [begin, end) of a V-row head split over `ranks`.
std::pair<int64_t, int64_t> vocab_slice(int64_t vocab, int ranks, int rank);

// Collective (every rank of `pg`, also those with m = 0): logits [m, vocab] of this rank's rows
// x [m, hidden], with lm_head [vocab, hidden] of which only this rank's slice is read.
void vocab_parallel_head(dist::ProcessGroup& pg, const float* lm_head, int64_t vocab,
                         int64_t hidden, const float* x, int64_t m, float* logits);

}  // namespace wideserve::model
