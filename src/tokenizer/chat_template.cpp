#include "tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::tokenizer {

struct ChatTemplate::Impl {
  std::string source;  // normalized, positions refer to it
  jinja::Body body;
  jinja::RenderLimits limits;

  [[noreturn]] void rethrow(const jinja::JinjaError& e, const char* phase) const {
    std::string where;
    if (e.pos() != jinja::JinjaError::kNoPos) {
      auto [line, col] = jinja::line_col(source, e.pos());
      where = fmt::format(" (line {}, column {})", line, col);
    }
    if (e.raised_by_template())
      WS_THROW(kInvalidArgument, "chat template raised an exception: {}{}", e.message(), where);
    WS_THROW(kInvalidArgument, "chat template {} error{}: {}", phase, where, e.message());
  }

  template <typename J>
  std::string render(const J& context) const {
    WS_CHECK_ARG(context.is_object(), "chat template context must be a JSON object");
    std::unordered_map<std::string, jinja::Value> vars;
    for (auto it = context.begin(); it != context.end(); ++it)
      vars[it.key()] = jinja::from_json(it.value());
    try {
      jinja::Interpreter interp(limits);
      return interp.render(body, std::move(vars));
    } catch (const jinja::JinjaError& e) {
      rethrow(e, "render");
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      // Allocation failures and the like must not escape as foreign exception types.
      WS_THROW(kInvalidArgument, "chat template render error: {}", e.what());
    }
  }
};

ChatTemplate::ChatTemplate(std::string_view source, jinja::RenderLimits limits)
    : impl_(std::make_unique<Impl>()) {
  jinja::LexerOptions opts;
  impl_->source = jinja::normalize_source(source, opts);
  impl_->limits = limits;
  try {
    impl_->body = jinja::parse_template(jinja::tokenize(impl_->source, opts));
  } catch (const jinja::JinjaError& e) {
    impl_->rethrow(e, "syntax");
  } catch (const std::exception& e) {
    WS_THROW(kInvalidArgument, "chat template syntax error: {}", e.what());
  }
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return impl_->render(context);
}
std::string ChatTemplate::render(const nlohmann::json& context) const {
  return impl_->render(context);
}

namespace {

// {"thinking": r, **message, "reasoning_content": r} as transformers builds it.
nlohmann::ordered_json alias_reasoning(const nlohmann::ordered_json& msg) {
  const nlohmann::ordered_json* reasoning = nullptr;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    auto it = msg.find(key);
    if (it != msg.end() && !it->is_null()) {
      reasoning = &*it;
      break;
    }
  }
  if (!reasoning) return msg;
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["thinking"] = *reasoning;
  for (auto it = msg.begin(); it != msg.end(); ++it) out[it.key()] = it.value();
  out["reasoning_content"] = *reasoning;
  return out;
}

}  // namespace

nlohmann::ordered_json hf_chat_context(const nlohmann::ordered_json& request,
                                       const nlohmann::ordered_json& special_tokens,
                                       const HfMessageNormalization& norm) {
  WS_CHECK_ARG(request.is_object(), "chat request must be a JSON object");
  auto mit = request.find("messages");
  WS_CHECK_ARG(mit != request.end() && mit->is_array(), "chat request needs a \"messages\" array");
  WS_CHECK_ARG(!mit->empty(), "cannot apply the chat template to an empty conversation");
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  if (special_tokens.is_object())
    for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it)
      ctx[it.key()] = it.value();
  for (auto it = request.begin(); it != request.end(); ++it) {
    const std::string& k = it.key();
    if (k == "messages" || k == "tools" || k == "documents" || k == "add_generation_prompt")
      continue;
    ctx[k] = it.value();
  }
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const auto& m : *mit) {
    if (!m.is_object()) {
      WS_CHECK_ARG(!norm.drop_none_keys, "chat messages must be JSON objects");
      messages.push_back(m);
      continue;
    }
    nlohmann::ordered_json msg = m;
    if (norm.drop_none_keys) {
      msg = nlohmann::ordered_json::object();
      for (auto it = m.begin(); it != m.end(); ++it)
        if (!it->is_null()) msg[it.key()] = it.value();
    }
    if (norm.alias_reasoning_fields) msg = alias_reasoning(msg);
    messages.push_back(std::move(msg));
  }
  ctx["messages"] = std::move(messages);
  auto tools = request.find("tools");
  if (tools != request.end() && !tools->is_null()) {
    WS_CHECK_ARG(tools->is_array(), "\"tools\" must be an array");
    for (const auto& t : *tools)
      WS_CHECK_ARG(t.is_object(), "each tool must be a JSON object (a JSON schema)");
  }
  ctx["tools"] = tools != request.end() ? *tools : nlohmann::ordered_json();
  auto docs = request.find("documents");
  ctx["documents"] = docs != request.end() ? *docs : nlohmann::ordered_json();
  auto agp = request.find("add_generation_prompt");
  ctx["add_generation_prompt"] = agp != request.end() ? *agp : nlohmann::ordered_json(false);
  return ctx;
}

nlohmann::ordered_json special_tokens_of(const TokenizerConfig& config) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (config.bos_token) out["bos_token"] = *config.bos_token;
  if (config.eos_token) out["eos_token"] = *config.eos_token;
  if (config.pad_token) out["pad_token"] = *config.pad_token;
  return out;
}

static std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  WS_CHECK_CODE(kNotFound, f.good(), "cannot open {}", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ChatTemplateSource load_chat_template_source(const std::string& dir) {
  namespace fs = std::filesystem;
  ChatTemplateSource out;
  out.special_tokens = nlohmann::ordered_json::object();
  fs::path cfg_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(cfg_path)) {
    nlohmann::ordered_json cfg;
    try {
      cfg = nlohmann::ordered_json::parse(read_file(cfg_path));
    } catch (const nlohmann::json::exception& e) {
      WS_THROW(kDataLoss, "{}: invalid JSON: {}", cfg_path.string(), e.what());
    }
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                            "cls_token", "mask_token"}) {
      auto it = cfg.find(key);
      if (it == cfg.end() || it->is_null()) continue;
      if (it->is_string())
        out.special_tokens[key] = *it;
      else if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        out.special_tokens[key] = (*it)["content"];
    }
    auto ct = cfg.find("chat_template");
    if (ct != cfg.end() && ct->is_string()) {
      out.source = ct->get<std::string>();
    } else if (ct != cfg.end() && ct->is_array()) {
      out.named = nlohmann::ordered_json::object();
      for (const auto& e : *ct)
        if (e.is_object() && e.contains("name") && e.contains("template"))
          out.named[e["name"].get<std::string>()] = e["template"];
      if (out.named.contains("default")) out.source = out.named["default"].get<std::string>();
    }
  }
  fs::path jinja_path = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja_path)) out.source = read_file(jinja_path);
  return out;
}

std::string select_chat_template(const ChatTemplateSource& src, bool has_tools) {
  if (has_tools && src.named.is_object() && src.named.contains("tool_use"))
    return src.named["tool_use"].get<std::string>();
  WS_CHECK_ARG(!src.source.empty(), "the tokenizer has no chat template (pass --template FILE)");
  return src.source;
}

}  // namespace wideserve::tokenizer
