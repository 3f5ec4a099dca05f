// Environment variables as configuration: a snapshot of the process environment and strict
// parsers whose errors name the variable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::config {

using EnvMap = std::map<std::string, std::string>;

// The process environment (environ) as a map.
EnvMap process_env();

// Value of `name` in env, if set.
std::optional<std::string> env_value(const EnvMap& env, const std::string& name);

// Whole-string base-10 integer >= min_value; throws Error(kInvalidArgument) naming `name`.
int64_t parse_env_int(std::string_view name, std::string_view value, int64_t min_value);

// 1/0, true/false, yes/no, on/off (any case); throws Error(kInvalidArgument) naming `name`.
bool parse_env_bool(std::string_view name, std::string_view value);

// WIDESERVE_* variables that some part of wideserve reads (others draw a warning).
bool is_known_wideserve_env(std::string_view name);

// Appends "unknown environment variable NAME (ignored)" for each variable that starts with one of
// `prefixes` and that `is_known` rejects.
void collect_unknown_env(const EnvMap& env, std::span<const std::string_view> prefixes,
                         const std::function<bool(std::string_view)>& is_known,
                         std::vector<std::string>& warnings);

}  // namespace wideserve::config
