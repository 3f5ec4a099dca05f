// Loading: files -> JSON -> HfTokenizer, and the tokenizer_config.json fields.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "tokenizer/hf_tokenizer.h"

namespace wideserve::tokenizer {

using nlohmann::json;

namespace {

std::optional<std::string> token_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  // Serialized AddedToken: {"__type": "AddedToken", "content": ...}.
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  WS_THROW(kDataLoss, "tokenizer_config.json: '{}' must be a string or an object with 'content'",
           key);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  WS_CHECK_CODE(kNotFound, in.good(), "cannot open {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json parse(std::string_view text, const char* what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    WS_THROW(kDataLoss, "{} is not valid JSON: {}", what, e.what());
  }
}

}  // namespace

TokenizerConfig parse_tokenizer_config(const json& j) {
  TokenizerConfig c;
  if (j.is_null()) return c;
  WS_CHECK_CODE(kDataLoss, j.is_object(), "tokenizer_config.json: top level must be an object");
  c.bos_token = token_field(j, "bos_token");
  c.eos_token = token_field(j, "eos_token");
  c.pad_token = token_field(j, "pad_token");
  auto flag = [&](const char* key, bool def) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    WS_CHECK_CODE(kDataLoss, it->is_boolean(), "tokenizer_config.json: '{}' must be a bool", key);
    return it->get<bool>();
  };
  c.add_bos_token = flag("add_bos_token", false);
  c.add_eos_token = flag("add_eos_token", false);
  c.clean_up_tokenization_spaces = flag("clean_up_tokenization_spaces", false);
  if (auto t = j.find("chat_template"); t != j.end() && !t->is_null()) {
    if (t->is_string()) {
      c.chat_template = t->get<std::string>();
    } else {
      WS_CHECK_CODE(kDataLoss, t->is_array(),
                    "tokenizer_config.json: 'chat_template' must be a string or a list");
      const json* pick = nullptr;
      for (const json& e : *t) {
        WS_CHECK_CODE(kDataLoss,
                      e.is_object() && e.contains("template") && e["template"].is_string(),
                      "tokenizer_config.json: chat_template entries need 'name' and 'template'");
        if (!pick) pick = &e;
        if (e.value("name", "") == "default") {
          pick = &e;
          break;
        }
      }
      if (pick) c.chat_template = (*pick)["template"].get<std::string>();
    }
  }
  return c;
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json,
                                                std::string_view tokenizer_config_json) {
  json tok = parse(tokenizer_json, "tokenizer.json");
  json cfg = tokenizer_config_json.empty() ? json()
                                           : parse(tokenizer_config_json, "tokenizer_config.json");
  // Like transformers v5 (and Dynamo's Rust frontend), BOS/EOS come only from tokenizer.json's
  // post_processor when that file exists: add_bos_token in the config is reported, not applied.
  return std::make_unique<HfTokenizer>(tok, cfg);
}

std::unique_ptr<Tokenizer> Tokenizer::from_dir(const std::string& dir) {
  std::string tok_path = dir + "/tokenizer.json";
  std::string cfg_path = dir + "/tokenizer_config.json";
  std::string tok = read_file(tok_path);
  std::string cfg;
  if (std::ifstream(cfg_path).good()) cfg = read_file(cfg_path);
  try {
    return from_json(tok, cfg);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: {}", dir, e.what()));
  }
}

}  // namespace wideserve::tokenizer
