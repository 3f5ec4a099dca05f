#include "config/env.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/check.h"

extern char** environ;

namespace wideserve::config {

EnvMap process_env() {
  EnvMap env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

std::optional<std::string> env_value(const EnvMap& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  return it->second;
}

int64_t parse_env_int(std::string_view name, std::string_view value, int64_t min_value) {
  int64_t v = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, v);
  WS_CHECK_ARG(!value.empty() && ec == std::errc() && ptr == end,
               "environment variable {} must be an integer (got '{}')", name, value);
  WS_CHECK_ARG(v >= min_value, "environment variable {} must be >= {} (got {})", name, min_value,
               v);
  return v;
}

bool parse_env_bool(std::string_view name, std::string_view value) {
  std::string v(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  WS_THROW(kInvalidArgument,
           "environment variable {} must be a boolean (1/0, true/false, yes/no, on/off; got '{}')",
           name, value);
}

bool is_known_wideserve_env(std::string_view name) {
  static constexpr std::string_view kKnown[] = {
      "WIDESERVE_DISCOVERY",
      "WIDESERVE_CACHE_DIR",
      "WIDESERVE_DATA_DIR",
      "WIDESERVE_NUM_THREADS",
      "WIDESERVE_TINY_MODEL",
      "WIDESERVE_DISAGGREGATION_HEARTBEAT_MAX_FAILURE",
      "WIDESERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT",
      "WIDESERVE_DISAGGREGATION_WAITING_TIMEOUT",
  };
  return std::find(std::begin(kKnown), std::end(kKnown), name) != std::end(kKnown);
}

void collect_unknown_env(const EnvMap& env, std::span<const std::string_view> prefixes,
                         const std::function<bool(std::string_view)>& is_known,
                         std::vector<std::string>& warnings) {
  for (const auto& [name, value] : env) {
    const bool watched = std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) {
      return std::string_view(name).starts_with(p);
    });
    if (watched && !is_known(name))
      warnings.push_back(fmt::format("unknown environment variable {} (ignored)", name));
  }
}

}  // namespace wideserve::config
