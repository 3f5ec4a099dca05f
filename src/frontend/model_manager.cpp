#include "frontend/model_manager.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::frontend {
namespace {

std::shared_ptr<const ModelInfo> load_model(const runtime::WorkerInfo& w) {
  auto m = std::make_shared<ModelInfo>();
  m->name = w.model_name;
  m->path = w.model_path;
  m->context_length = w.context_length;
  m->vocab_size = w.vocab_size;
  m->reasoning_parser = w.reasoning_parser;
  m->tool_call_parser = w.tool_call_parser;
  m->created = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  m->tokenizer = tokenizer::Tokenizer::from_dir(w.model_path);
  auto src = tokenizer::load_chat_template_source(w.model_path);
  m->special_tokens = src.special_tokens;
  const std::string def = tokenizer::select_chat_template(src, false);
  const std::string tools = tokenizer::select_chat_template(src, true);
  if (!def.empty()) m->chat_template = std::make_shared<tokenizer::ChatTemplate>(def);
  if (!tools.empty())
    m->tool_template =
        tools == def ? m->chat_template : std::make_shared<tokenizer::ChatTemplate>(tools);
  return m;
}

}  // namespace

std::string ModelManager::add_worker(const runtime::WorkerInfo& info) {
  std::shared_ptr<const ModelInfo> existing;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = models_.find(info.model_name);
    if (it != models_.end()) existing = it->second;
  }
  if (existing) {
    if (std::filesystem::weakly_canonical(existing->path) !=
        std::filesystem::weakly_canonical(info.model_path))
      return fmt::format("model '{}' is already served from {}, not {}", info.model_name,
                         existing->path, info.model_path);
  } else {
    try {
      existing = load_model(info);
    } catch (const std::exception& e) {
      return fmt::format("cannot load tokenizer/chat template of model '{}' from {}: {}",
                         info.model_name, info.model_path, user_message(e));
    }
    WS_LOG_INFO("model '{}' from {}: vocab {}, context {}, chat template {}", info.model_name,
                info.model_path, existing->tokenizer->vocab_size(), info.context_length,
                existing->chat_template ? "yes" : "none");
  }
  std::lock_guard<std::mutex> lk(mu_);
  models_.try_emplace(info.model_name, existing);
  auto& w = workers_[info.instance_id];
  w.info = info;
  return {};
}

void ModelManager::update_worker(const runtime::WorkerInfo& info, const runtime::WorkerLoad& load,
                                 bool draining) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = workers_.find(info.instance_id);
  if (it == workers_.end()) return;
  it->second.load = load;
  it->second.draining = draining;
}

void ModelManager::remove_worker(const std::string& instance_id) {
  std::lock_guard<std::mutex> lk(mu_);
  workers_.erase(instance_id);
}

std::shared_ptr<const ModelInfo> ModelManager::model(const std::string& name) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return nullptr;
  for (const auto& [id, w] : workers_)
    if (w.info.model_name == name) return it->second;
  return nullptr;
}

std::vector<router::Candidate> ModelManager::candidates(const std::string& model) const {
  std::vector<router::Candidate> out;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [id, w] : workers_)
      if (w.info.model_name == model && !w.draining)
        out.push_back({w.info.instance_id, w.info.endpoint, w.load, w.info.role,
                       w.info.bootstrap_host, w.info.bootstrap_port, w.info.page_size,
                       w.info.dp_size});
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.instance_id < b.instance_id; });
  return out;
}

std::vector<std::shared_ptr<const ModelInfo>> ModelManager::models() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::shared_ptr<const ModelInfo>> out;
  for (const auto& [name, m] : models_) {
    for (const auto& [id, w] : workers_)
      if (w.info.model_name == name) {
        out.push_back(m);
        break;
      }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->name < b->name; });
  return out;
}

std::vector<WorkerView> ModelManager::workers() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<WorkerView> out;
  for (const auto& [id, w] : workers_) out.push_back(w);
  return out;
}

bool ModelManager::has_ready_worker() const {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& [id, w] : workers_)
    if (!w.draining) return true;
  return false;
}

}  // namespace wideserve::frontend
