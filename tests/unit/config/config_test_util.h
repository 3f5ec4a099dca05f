// Helpers for config tests: parse a command line into a config, run a callable and capture the
// wideserve::Error it throws.
#pragma once

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/check.h"
#include "config/env.h"

namespace wideserve::config::testing {

// Splits on whitespace (the seed's commands need no quoting); shell line continuations dropped.
inline std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    if (w != "\\") out.push_back(w);
  return out;
}

// Parses `args` (no program name) with the flags `add` registers on a fresh app.
template <typename Cfg, typename AddFlags>
void parse_args(const std::vector<std::string>& args, Cfg& cfg, AddFlags add) {
  CLI::App app{"test"};
  add(app, cfg);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants them reversed
  app.parse(reversed);
}

// The Error `fn` throws (nullopt if it returns normally).
template <typename Fn>
std::optional<Error> error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  return std::nullopt;
}

// A seed shell command ("VAR=v ... python3 -m dynamo.sglang --flag v ..."): environment and
// arguments, the module invocation stripped.
struct SeedCommand {
  EnvMap env;
  std::vector<std::string> args;
};

inline SeedCommand split_seed_command(const std::string& text, const std::string& module) {
  SeedCommand c;
  std::vector<std::string> w = words(text);
  size_t i = 0;
  for (; i < w.size() && w[i] != "python3"; ++i) {
    const size_t eq = w[i].find('=');
    EXPECT_NE(eq, std::string::npos) << w[i];
    c.env[w[i].substr(0, eq)] = w[i].substr(eq + 1);
  }
  EXPECT_TRUE(i + 2 < w.size() && w[i + 1] == "-m" && w[i + 2] == module) << text;
  c.args.assign(w.begin() + static_cast<long>(i) + 3, w.end());
  return c;
}

}  // namespace wideserve::config::testing
