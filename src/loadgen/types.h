// Plain data shared by the benchmark client's parts: prompts in, per-request records out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wideserve::loadgen {

// Which OpenAI API the requests use.
enum class Endpoint { kChat, kCompletions };

// One prompt of a workload. Chat sends [system?, user]; completions sends system + text, or the
// token ids when `token_ids` is non-empty.
struct Prompt {
  std::string system;              // shared prefix / system prompt; may be empty
  std::string text;                // the user's part
  std::vector<int32_t> token_ids;  // completions only: the prompt as ids (exact input length)
  int64_t input_tokens = 0;        // intended input length (exact for ids, else an estimate)
  int64_t output_tokens = 0;       // max_tokens to request
};

// What happened to one request. Times are seconds; `start_s` is relative to the benchmark start,
// chunk times relative to the request's start.
struct RequestRecord {
  int64_t index = 0;
  bool warmup = false;
  double start_s = 0;
  double ttft_s = -1;  // first content chunk; -1 if none
  double e2e_s = -1;   // end of stream ([DONE] or the body's end); -1 if failed early
  std::vector<double> content_times_s;  // arrival of every content-bearing chunk
  int64_t prompt_tokens = -1;           // from the server's usage; -1 if not reported
  int64_t completion_tokens = -1;
  int http_status = 0;
  std::string error_kind;  // empty on success; see docs/bench.md for the kinds
  std::string error_message;

  bool ok() const { return error_kind.empty(); }
};

}  // namespace wideserve::loadgen
