// `wideserve detokenize`: JSON id arrays (one per line) -> JSON strings.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/line_io.h"
#include "common/check.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::cli {
namespace {

std::vector<int32_t> parse_ids(const std::string& line, size_t line_no) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    WS_THROW(kInvalidArgument, "line {}: not valid JSON: {}", line_no, e.what());
  }
  WS_CHECK_ARG(j.is_array(), "line {}: expected a JSON array of token ids, got {}", line_no,
               j.type_name());
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    WS_CHECK_ARG(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX,
                 "line {}: element {} is not a token id (non-negative integer): {}", line_no, i,
                 v.dump());
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

WS_REGISTER_COMMAND(
    "detokenize", "Decode JSON id arrays (one per line on stdin) to JSON strings",
    [](CLI::App& app) {
      auto dir = std::make_shared<std::string>();
      auto skip = std::make_shared<bool>(false);
      app.add_option("--tokenizer", *dir, "Directory with tokenizer.json")->required();
      app.add_flag("--skip-special-tokens", *skip,
                   "Drop special added tokens, as HF decode(skip_special_tokens=True)");
      return [=] {
        auto tok = tokenizer::Tokenizer::from_dir(*dir);
        for_each_stdin_line([&](const std::string& line, size_t n, std::string& out) {
          std::string text = tok->decode(parse_ids(line, n), *skip);
          out +=
              nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          out.push_back('\n');
        });
        return 0;
      };
    });

}  // namespace
}  // namespace wideserve::cli
