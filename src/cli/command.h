// Subcommand registry: each src/cli/cmd_*.cpp registers itself; main.cpp parses and dispatches.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace wideserve::cli {

// Adds a subcommand's options to `app` and returns the function that runs it (exit code).
using CommandSetup = std::function<std::function<int()>(CLI::App& app)>;

// One registered subcommand.
struct Command {
  std::string name;
  std::string help;
  CommandSetup setup;
};

// All subcommands registered so far, in registration order.
std::vector<Command>& command_registry();

// Registers a subcommand at static-initialization time.
struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string help, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

}  // namespace wideserve::cli

#define WS_CLI_CONCAT2(a, b) a##b
#define WS_CLI_CONCAT(a, b) WS_CLI_CONCAT2(a, b)
// WS_REGISTER_COMMAND("name", "help", [](CLI::App& app) { ...; return [=] { return 0; }; });
#define WS_REGISTER_COMMAND(name, help, ...)                                            \
  static ::wideserve::cli::CommandRegistrar WS_CLI_CONCAT(ws_cmd_registrar_, __LINE__)( \
      name, help, __VA_ARGS__)
