// wideserve: one binary, many subcommands (see `wideserve --help`).
#include <cstdio>
#include <exception>
#include <memory>

#include "cli/command.h"
#include "common/check.h"
#include "common/logging.h"

namespace wideserve::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> registry;
  return registry;
}
}  // namespace wideserve::cli

int main(int argc, char** argv) {
  using namespace wideserve;
  set_log_process_name("wideserve");
  CLI::App app{"wideserve: DeepSeek-V3/R1 MoE serving (frontend, workers, tools)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "wideserve 0.1.0");
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  try {
    for (auto& cmd : cli::command_registry()) {
      CLI::App* sub = app.add_subcommand(cmd.name, cmd.help);
      runners.emplace_back(sub, cmd.setup(*sub));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Error& e) {
    // Flag validation that runs inside CLI11 callbacks.
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  for (auto& [sub, run] : runners) {
    if (!sub->parsed()) continue;
    try {
      return run();
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: unexpected: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
