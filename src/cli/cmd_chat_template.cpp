// `wideserve chat-template`: renders chat requests (one JSON object per stdin line) to prompts.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "common/check.h"
#include "tokenizer/chat_template.h"

namespace wideserve::cli {
namespace {

struct ChatTemplateArgs {
  std::string tokenizer_dir;
  std::string template_file;
  bool keep_going = false;
  bool hf_normalize = false;
};

int run_chat_template(const ChatTemplateArgs& args) {
  using nlohmann::ordered_json;
  tokenizer::ChatTemplateSource src;
  if (!args.tokenizer_dir.empty()) src = tokenizer::load_chat_template_source(args.tokenizer_dir);
  if (!args.template_file.empty()) {
    std::ifstream f(args.template_file, std::ios::binary);
    WS_CHECK_CODE(kNotFound, f.good(), "cannot open template file {}", args.template_file);
    std::stringstream ss;
    ss << f.rdbuf();
    src.source = ss.str();
    src.named = ordered_json();
  }
  tokenizer::HfMessageNormalization norm;
  norm.drop_none_keys = norm.alias_reasoning_fields = args.hf_normalize;
  std::map<std::string, std::unique_ptr<tokenizer::ChatTemplate>> compiled;
  std::ios::sync_with_stdio(false);  // large prompts: stdio-synced getline is slow
  std::string line;
  int64_t lineno = 0;
  int failures = 0;
  while (std::getline(std::cin, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::string result;
    try {
      ordered_json req;
      try {
        req = ordered_json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        WS_THROW(kInvalidArgument, "invalid JSON: {}", e.what());
      }
      WS_CHECK_ARG(req.is_object(), "each line must be a JSON object");
      auto tools = req.find("tools");
      bool has_tools = tools != req.end() && !tools->is_null();
      // An explicit --template is used as is, even when empty.
      std::string source =
          args.template_file.empty() ? tokenizer::select_chat_template(src, has_tools) : src.source;
      auto& tmpl = compiled[source];
      if (!tmpl) tmpl = std::make_unique<tokenizer::ChatTemplate>(source);
      result = tmpl->render(tokenizer::hf_chat_context(req, src.special_tokens, norm));
    } catch (const Error& e) {
      if (!args.keep_going) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: line %lld: %s\n", static_cast<long long>(lineno), e.what());
        return 1;
      }
      ++failures;
      ordered_json err = {{"error", e.what()}};
      std::string out = err.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fputc('\n', stdout);
      continue;
    }
    std::string out =
        ordered_json(result).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
  return 0;
}

WS_REGISTER_COMMAND(
    "chat-template",
    "Render chat requests (JSON per stdin line) with the tokenizer's chat template",
    [](CLI::App& app) {
      auto args = std::make_shared<ChatTemplateArgs>();
      app.add_option("--tokenizer", args->tokenizer_dir,
                     "Tokenizer directory (tokenizer_config.json / chat_template.jinja)");
      app.add_option("--template", args->template_file, "Jinja template file used instead");
      app.add_flag("--keep-going", args->keep_going,
                   "On a bad line print {\"error\": ...} and continue instead of exiting 1");
      app.add_flag("--hf-normalize-messages", args->hf_normalize,
                   "Drop null message keys and alias reasoning fields as transformers > 5.17 does");
      return [args] {
        WS_CHECK_ARG(!args->tokenizer_dir.empty() || !args->template_file.empty(),
                     "pass --tokenizer DIR or --template FILE");
        return run_chat_template(*args);
      };
    });

}  // namespace
}  // namespace wideserve::cli
