#include "loadgen/openai_stream.h"

#include <nlohmann/json.hpp>

namespace wideserve::loadgen {
namespace {

bool non_empty_string(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
}

std::string error_text(const nlohmann::json& err) {
  if (err.is_object()) {
    if (auto m = err.find("message"); m != err.end() && m->is_string())
      return m->get<std::string>();
  }
  return err.dump();
}

}  // namespace

bool OpenAiStreamDecoder::on_data(std::string_view data) {
  if (!error_kind_.empty() || done_) return false;
  if (data == "[DONE]") {
    done_ = true;
    return false;
  }
  nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    error_kind_ = "bad_response";
    error_message_ = "stream chunk is not a JSON object: " + std::string(data.substr(0, 200));
    return false;
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    error_kind_ = "stream_error";
    error_message_ = error_text(*e);
    return false;
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    auto p = u->find("prompt_tokens"), c = u->find("completion_tokens");
    if (p != u->end() && p->is_number_integer()) prompt_tokens_ = p->get<int64_t>();
    if (c != u->end() && c->is_number_integer()) completion_tokens_ = c->get<int64_t>();
  }
  bool content = false;
  if (auto ch = j.find("choices"); ch != j.end() && ch->is_array()) {
    for (const auto& choice : *ch) {
      if (!choice.is_object()) continue;
      if (endpoint_ == Endpoint::kChat) {
        auto d = choice.find("delta");
        if (d != choice.end() && d->is_object())
          content |= non_empty_string(*d, "content") || non_empty_string(*d, "reasoning_content");
      } else {
        content |= non_empty_string(choice, "text");
      }
    }
  }
  return content;
}

}  // namespace wideserve::loadgen
