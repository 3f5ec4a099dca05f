// Bounded randomized fuzzing of the template lexer, parser and renderer: random token soup,
// mutated real templates and generated expressions must either render or throw wideserve::Error,
// within a few seconds and without crashing or hanging.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/check.h"
#include "tokenizer/chat_template.h"

namespace wideserve::tokenizer {
namespace {

using nlohmann::ordered_json;

const char* const kFragments[] = {
    "{{",          "}}",         "{%",      "%}",
    "{#",          "#}",         "{{-",     "-}}",
    "{%-",         "-%}",        "{%+",     "+%}",
    " ",           "\n",         "\t",      "if ",
    "elif ",       "else",       "endif",   "for ",
    " in ",        "endfor",     "set ",    "endset",
    "macro ",      "endmacro",   "break",   "continue",
    "raw",         "endraw",     "not ",    " and ",
    " or ",        " is ",       "defined", "none",
    "true",        "x",          "m",       "messages",
    "loop",        "loop.index", "ns",      "namespace(",
    "range(",      "999999",     "0",       "1",
    "-1",          "2.5",        "1e308",   "'s'",
    "\"d\"",       "'",          "\"",      "\\",
    ".",           ",",          ":",       "(",
    ")",           "[",          "]",       "{",
    "}",           "|",          "~",       "+",
    "-",           "*",          "**",      "/",
    "//",          "%",          "==",      "!=",
    "<",           ">=",         "=",       "trim",
    "tojson",      "length",     "join",    "map",
    "selectattr",  "items",      "default", "upper",
    "int",         "list",       "replace", "indent",
    "center",      "round",      "sort",    "unique",
    "content",     "role",       "split(",  "strip(",
    "startswith(", "[::-1]",     "[1:]",    "raise_exception(",
    "é",           "日本",       "😀",       "\xff",
    "\xc3",        "caller",
};

ordered_json sample_context() {
  return ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"},
                 {"role": "user", "content": "héllo {{ x }} </think>"},
                 {"role": "assistant", "content": null, "tool_calls": [
                   {"type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
                 {"role": "tool", "content": "out"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "x": [1, 2, 3], "m": {"a": {"b": 1}}})");
}

// Compiles and renders; only wideserve::Error may escape.
void exercise(const std::string& tmpl, const ordered_json& ctx) {
  jinja::RenderLimits limits;
  limits.max_steps = 200000;
  limits.max_output_bytes = 1 << 20;
  try {
    ChatTemplate t(tmpl, limits);
    t.render(ctx);
  } catch (const Error&) {
  }
}

std::string random_expr(std::mt19937& rng, int depth) {
  static const char* const kAtoms[] = {
      "x",    "m",    "m.a",    "m.a.b",    "messages", "messages[0]", "1",        "2.5",  "'str'",
      "none", "true", "[1, 2]", "{'k': 1}", "u",        "loop",        "range(3)", "tools"};
  static const char* const kBin[] = {" + ",  " - ", " * ",  " / ",   " // ", " % ", " ~ ",
                                     " == ", " < ", " in ", " and ", " or ", " ** "};
  static const char* const kPost[] = {"|length",
                                      "|tojson",
                                      "|trim",
                                      "|list",
                                      "|first",
                                      "|string",
                                      "|default(1)",
                                      "|join(',')",
                                      "|items",
                                      ".content",
                                      "[0]",
                                      "[1:]",
                                      " is defined",
                                      " is string",
                                      "|map(attribute='role')",
                                      "|selectattr('role')",
                                      "|sort",
                                      "|reverse",
                                      "|upper",
                                      "|int"};
  std::uniform_int_distribution<int> pick(0, 9);
  if (depth > 6 || pick(rng) < 3) return kAtoms[rng() % std::size(kAtoms)];
  switch (pick(rng) % 5) {
    case 0:
      return random_expr(rng, depth + 1) + kBin[rng() % std::size(kBin)] +
             random_expr(rng, depth + 1);
    case 1:
      return "(" + random_expr(rng, depth + 1) + ")" + kPost[rng() % std::size(kPost)];
    case 2:
      return "not " + random_expr(rng, depth + 1);
    case 3:
      return random_expr(rng, depth + 1) + " if " + random_expr(rng, depth + 1) + " else " +
             random_expr(rng, depth + 1);
    default:
      return "[" + random_expr(rng, depth + 1) + ", " + random_expr(rng, depth + 1) + "]";
  }
}

std::string random_template(std::mt19937& rng, int depth) {
  std::string out;
  int n = 1 + rng() % 4;
  for (int i = 0; i < n; ++i) {
    switch (rng() % 7) {
      case 0:
        out += "text ";
        break;
      case 1:
        out += "{{ " + random_expr(rng, 0) + " }}";
        break;
      case 2:
        if (depth < 4)
          out += "{% if " + random_expr(rng, 0) + " %}" + random_template(rng, depth + 1) +
                 "{% else %}" + random_template(rng, depth + 1) + "{% endif %}";
        break;
      case 3:
        if (depth < 4)
          out += "{% for i in " + random_expr(rng, 0) + " %}{{ loop.index }}" +
                 random_template(rng, depth + 1) + "{% endfor %}";
        break;
      case 4:
        out += "{% set v = " + random_expr(rng, 0) + " %}{{ v }}";
        break;
      case 5:
        out += "{%- macro mm(a, b=2) -%}{{ a ~ b }}{%- endmacro %}{{ mm(" + random_expr(rng, 0) +
               ") }}";
        break;
      default:
        out += "{# c #}\n  ";
        break;
    }
  }
  return out;
}

std::vector<std::string> seed_templates() {
  std::vector<std::string> out;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(WS_TEST_FIXTURES) + "/chat_templates")) {
    std::ifstream f(e.path());
    std::stringstream ss;
    ss << f.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

TEST(JinjaFuzzTest, RandomAndMutatedTemplatesNeverCrash) {
  std::mt19937 rng(12345);
  const ordered_json ctx = sample_context();
  const std::vector<std::string> seeds = seed_templates();
  ASSERT_FALSE(seeds.empty());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  int iterations = 0;
  while (std::chrono::steady_clock::now() < deadline && iterations < 200000) {
    ++iterations;
    std::string t;
    switch (iterations % 3) {
      case 0: {  // token soup
        int n = 1 + rng() % 40;
        for (int i = 0; i < n; ++i) t += kFragments[rng() % std::size(kFragments)];
        break;
      }
      case 1: {  // mutated real template
        t = seeds[rng() % seeds.size()];
        int edits = 1 + rng() % 6;
        for (int i = 0; i < edits && !t.empty(); ++i) {
          size_t pos = rng() % t.size();
          switch (rng() % 4) {
            case 0:
              t.erase(pos, 1 + rng() % 8);
              break;
            case 1:
              t.insert(pos, kFragments[rng() % std::size(kFragments)]);
              break;
            case 2:
              t[pos] = static_cast<char>(rng() % 256);
              break;
            default:
              t.insert(pos, t.substr(rng() % t.size(), rng() % 40));
              break;
          }
        }
        break;
      }
      default:
        t = random_template(rng, 0);
    }
    exercise(t, ctx);
  }
  EXPECT_GT(iterations, 100);
  std::printf("fuzz iterations: %d\n", iterations);
}

TEST(JinjaFuzzTest, PathologicalInputsAreBounded) {
  const ordered_json ctx = sample_context();
  exercise(std::string(100000, '{'), ctx);
  exercise("{{" + std::string(100000, '(') + "}}", ctx);
  exercise("{{" + std::string(100000, '[') + std::string(100000, ']') + "}}", ctx);
  exercise(std::string(20000, '-'), ctx);
  exercise("{% for a in range(99999) %}{% for b in range(99999) %}{{ a }}{% endfor %}{% endfor %}",
           ctx);
  exercise("{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}", ctx);
  exercise("{% set s = 'ab' %}{% for i in range(60) %}{% set s = s ~ s %}{% endfor %}{{ s }}", ctx);
  exercise(
      "{{ 'x' | center(99999999999) }}{{ 'x'.zfill(999999999999) }}{{ 'x' | indent(99999999) }}",
      ctx);
  exercise("{{ x | map(attribute='99999999999999999999999') | list }}{{ '1' | int(base=99) }}",
           ctx);
  exercise(
      "{{ 9223372036854775807 + 1 }}{{ 2 ** 63 }}{{ -9223372036854775807 - 2 }}{{ "
      "99999999999999999999 }}",
      ctx);
  SUCCEED();
}

}  // namespace
}  // namespace wideserve::tokenizer
