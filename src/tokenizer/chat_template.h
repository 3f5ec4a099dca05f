// Chat template rendering compatible with HF transformers' apply_chat_template(tokenize=False).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "tokenizer/jinja/interpreter.h"

namespace wideserve::tokenizer {

struct TokenizerConfig;

// Message preprocessing that newer transformers releases (after 5.17) apply before rendering.
struct HfMessageNormalization {
  bool drop_none_keys = false;          // drop message keys whose value is null
  bool alias_reasoning_fields = false;  // copy reasoning_content/thinking/reasoning to each other
};

// A compiled Jinja2 chat template: compile once, render many times from any thread.
class ChatTemplate {
 public:
  // Compiles `source`; throws Error(kInvalidArgument) naming line/column on syntax errors or
  // unsupported constructs.
  explicit ChatTemplate(std::string_view source, jinja::RenderLimits limits = {});
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders with every key of the `context` object as a template variable. Prefer ordered_json:
  // nlohmann::json sorts object keys, which changes `tojson` output (HF keeps insertion order).
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const nlohmann::json& context) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Template variables exactly as HF passes them: special tokens, extra kwargs, then messages,
// tools (null when absent), documents and add_generation_prompt (false when absent).
nlohmann::ordered_json hf_chat_context(const nlohmann::ordered_json& request,
                                       const nlohmann::ordered_json& special_tokens,
                                       const HfMessageNormalization& norm = {});

// Special-token variables (bos_token, eos_token, pad_token...) from a TokenizerConfig.
nlohmann::ordered_json special_tokens_of(const TokenizerConfig& config);

// Template source and special tokens read from DIR (chat_template.jinja or tokenizer_config.json).
struct ChatTemplateSource {
  std::string source;            // the default template ("" when none)
  nlohmann::ordered_json named;  // name -> template when the config lists several
  nlohmann::ordered_json special_tokens;
};
ChatTemplateSource load_chat_template_source(const std::string& dir);
// Picks the named template HF would use ("tool_use" when tools are given, else "default").
std::string select_chat_template(const ChatTemplateSource& src, bool has_tools);

}  // namespace wideserve::tokenizer
