// The models the frontend serves, learnt from the workers that register: per model its tokenizer,
// chat template and limits (loaded once from the model directory a worker announces), and the
// live workers that serve it.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "router/worker_router.h"
#include "runtime/messages.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::frontend {

// Everything needed to pre- and post-process requests for one model (immutable once loaded).
struct ModelInfo {
  std::string name;
  std::string path;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
  std::shared_ptr<const tokenizer::ChatTemplate> chat_template;  // default template, may be null
  std::shared_ptr<const tokenizer::ChatTemplate> tool_template;  // "tool_use" template, may be null
  nlohmann::ordered_json special_tokens;
  int64_t context_length = 0;
  int64_t vocab_size = 0;
  std::string reasoning_parser;
  std::string tool_call_parser;
  int64_t created = 0;  // unix seconds when first seen
};

// A live worker as the frontend sees it (data only).
struct WorkerView {
  runtime::WorkerInfo info;
  runtime::WorkerLoad load;
  bool draining = false;
};

class ModelManager {
 public:
  // Loads the model's tokenizer and template if new. Returns an error text when the worker cannot
  // be used (unreadable tokenizer, a name already served from a different model), else "".
  std::string add_worker(const runtime::WorkerInfo& info);
  void update_worker(const runtime::WorkerInfo& info, const runtime::WorkerLoad& load,
                     bool draining);
  void remove_worker(const std::string& instance_id);

  // The model, or null when no live worker serves it.
  std::shared_ptr<const ModelInfo> model(const std::string& name) const;
  // Live, non-draining workers of a model, sorted by instance id.
  std::vector<router::Candidate> candidates(const std::string& model) const;
  std::vector<std::shared_ptr<const ModelInfo>> models() const;
  std::vector<WorkerView> workers() const;
  bool has_ready_worker() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const ModelInfo>> models_;  // by name
  std::unordered_map<std::string, WorkerView> workers_;                       // by instance id
};

}  // namespace wideserve::frontend
