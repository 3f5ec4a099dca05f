// Logging: spdlog behind a small facade so that every process formats lines the same way.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace wideserve {

// Sets the global level from a name (debug, info, warning, error, critical); throws on unknown
// names.
void set_log_level(std::string_view level);

// Sets the process tag printed on each line (e.g. "frontend", "worker-0").
void set_log_process_name(std::string_view name);

}  // namespace wideserve

#define WS_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define WS_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define WS_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define WS_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
#define WS_LOG_CRITICAL(...) ::spdlog::critical(__VA_ARGS__)
