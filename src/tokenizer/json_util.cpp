#include "tokenizer/json_util.h"

#include "common/check.h"

namespace wideserve::tokenizer {

using nlohmann::json;

std::string json_type(const json& j, const char* what) {
  WS_CHECK_CODE(kDataLoss, j.is_object(), "tokenizer.json: {} must be an object, got {}", what,
                j.type_name());
  auto it = j.find("type");
  WS_CHECK_CODE(kDataLoss, it != j.end() && it->is_string(),
                "tokenizer.json: {} has no string field 'type'", what);
  return it->get<std::string>();
}

const json& json_array(const json& j, const char* key, const char* what) {
  auto it = j.find(key);
  WS_CHECK_CODE(kDataLoss, it != j.end() && it->is_array(),
                "tokenizer.json: {} needs an array field '{}'", what, key);
  return *it;
}

std::string json_string(const json& j, const char* key, const char* what) {
  auto it = j.find(key);
  WS_CHECK_CODE(kDataLoss, it != j.end() && it->is_string(),
                "tokenizer.json: {} needs a string field '{}'", what, key);
  return it->get<std::string>();
}

bool json_bool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  WS_CHECK_CODE(kDataLoss, it->is_boolean(), "tokenizer.json: field '{}' must be a bool", key);
  return it->get<bool>();
}

std::string json_string_or(const json& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  WS_CHECK_CODE(kDataLoss, it->is_string(), "tokenizer.json: field '{}' must be a string", key);
  return it->get<std::string>();
}

std::pair<std::unique_ptr<Regex>, std::string> json_pattern(const json& j, const char* what) {
  auto it = j.find("pattern");
  WS_CHECK_CODE(kDataLoss, it != j.end() && it->is_object(),
                "tokenizer.json: {} needs an object field 'pattern'", what);
  if (auto s = it->find("String"); s != it->end() && s->is_string()) {
    return {nullptr, s->get<std::string>()};
  }
  if (auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    return {std::make_unique<Regex>(r->get<std::string>()), std::string()};
  }
  WS_THROW(kDataLoss,
           "tokenizer.json: {} pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}", what);
}

}  // namespace wideserve::tokenizer
