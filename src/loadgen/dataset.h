// Workloads: random prompts (text or token ids), ShareGPT conversations, and a prefix-sharing
// workload (N system prompts x M users).
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/types.h"

namespace wideserve::loadgen {

// Counts the tokens of a text (a real tokenizer when the user gives one). Null: estimate.
using TokenCounter = std::function<int64_t(std::string_view)>;

// Token estimate without a tokenizer: about 4 characters per token, at least 1 for non-empty text.
int64_t estimate_tokens(std::string_view text);

// Random text of about `tokens` tokens from a fixed English word list; exact when `counter` is
// given (words are added/removed until the count matches, if any word count can reach it).
std::string random_text(int64_t tokens, std::mt19937_64& rng, const TokenCounter& counter);

// Length in [max(1, floor(len * ratio)), len], uniform (SGLang's --random-range-ratio).
int64_t random_length(int64_t len, double range_ratio, std::mt19937_64& rng);

struct RandomDatasetConfig {
  int64_t num_prompts = 100;
  int64_t input_len = 1024, output_len = 128;
  double range_ratio = 1.0;  // 1: fixed lengths
  bool token_ids = false;    // prompts as token ids (completions only): exact input length
  int32_t id_low = 1000, id_high = 30000;  // ids drawn uniformly from [id_low, id_high)
  uint64_t seed = 0;
};
std::vector<Prompt> make_random_prompts(const RandomDatasetConfig& cfg,
                                        const TokenCounter& counter);

struct ShareGptConfig {
  std::string path;              // JSON array (or JSON lines) of {"conversations": [...]}
  int64_t num_prompts = 100;     // at most this many (fewer if the file has fewer usable)
  int64_t fixed_output_len = 0;  // > 0: every request asks for this many tokens
  int64_t max_input_len = 1024;  // skip longer prompts (as bench_serving)
  int64_t max_total_len = 2048;  // skip prompt + reply longer than this
  uint64_t seed = 0;
};
// First human turn -> prompt, first reply's length -> max_tokens; shuffled with the seed.
std::vector<Prompt> load_sharegpt(const ShareGptConfig& cfg, const TokenCounter& counter);

struct PrefixDatasetConfig {
  int64_t num_groups = 4;       // distinct system prompts
  int64_t users_per_group = 8;  // distinct questions per system prompt
  int64_t system_len = 1024, question_len = 128, output_len = 128;
  bool token_ids = false;
  int32_t id_low = 1000, id_high = 30000;
  uint64_t seed = 0;
};
// num_groups * users_per_group prompts in a seeded random order.
std::vector<Prompt> make_prefix_prompts(const PrefixDatasetConfig& cfg,
                                        const TokenCounter& counter);

}  // namespace wideserve::loadgen
