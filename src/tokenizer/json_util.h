// Checked accessors for tokenizer.json fields: errors name the component and the field.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "tokenizer/regex.h"

namespace wideserve::tokenizer {

// The "type" string of a component object.
std::string json_type(const nlohmann::json& j, const char* what);
// A required array field.
const nlohmann::json& json_array(const nlohmann::json& j, const char* key, const char* what);
// A required string field.
std::string json_string(const nlohmann::json& j, const char* key, const char* what);
// An optional bool field (absent or null gives `def`).
bool json_bool(const nlohmann::json& j, const char* key, bool def);
// An optional string field (absent or null gives `def`).
std::string json_string_or(const nlohmann::json& j, const char* key, const std::string& def);
// A "pattern": {"String": s} or {"Regex": r} field: (compiled regex or null, literal).
std::pair<std::unique_ptr<Regex>, std::string> json_pattern(const nlohmann::json& j,
                                                            const char* what);

}  // namespace wideserve::tokenizer
