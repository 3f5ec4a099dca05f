#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

#include "common/check.h"

namespace wideserve {

void set_log_level(std::string_view level) {
  std::string l(level);
  if (l == "warn") l = "warning";
  spdlog::level::level_enum lv;
  if (l == "trace")
    lv = spdlog::level::trace;
  else if (l == "debug")
    lv = spdlog::level::debug;
  else if (l == "info")
    lv = spdlog::level::info;
  else if (l == "warning")
    lv = spdlog::level::warn;
  else if (l == "error")
    lv = spdlog::level::err;
  else if (l == "critical")
    lv = spdlog::level::critical;
  else
    WS_THROW(kInvalidArgument,
             "unknown log level '{}' (trace, debug, info, warning, error, critical)", level);
  spdlog::set_level(lv);
}

void set_log_process_name(std::string_view name) {
  // Logs go to stderr so that stdout stays machine-readable for CLI subcommands.
  auto logger = spdlog::stderr_color_mt(std::string(name));
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v");
}

}  // namespace wideserve
