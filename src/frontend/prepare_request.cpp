#include "frontend/prepare_request.h"

#include "common/check.h"
#include "tokenizer/chat_template.h"

namespace wideserve::frontend {
namespace {

[[noreturn]] void bad(std::string message, std::string param = {}) {
  throw api::ApiException(api::invalid_request(std::move(message), std::move(param)));
}

std::vector<int32_t> chat_prompt(const api::CompletionRequest& req, const ModelInfo& m,
                                 bool use_tools) {
  const auto& tmpl = use_tools && m.tool_template ? m.tool_template : m.chat_template;
  if (!tmpl)
    bad(fmt::format("model '{}' has no chat template; use /v1/completions", m.name), "messages");
  std::string text;
  try {
    auto input = api::chat_template_input(req);
    if (!use_tools) input.erase("tools");
    text = tmpl->render(tokenizer::hf_chat_context(input, m.special_tokens));
    if (req.continue_final_message) {
      // As HF: cut the rendered prompt right after the final message's content, so the model
      // continues that message instead of closing it.
      const auto& last = req.messages.back();
      const std::string content = last.contains("content") && last["content"].is_string()
                                      ? last["content"].get<std::string>()
                                      : std::string();
      const size_t at = content.empty() ? std::string::npos : text.rfind(content);
      if (at == std::string::npos)
        bad("continue_final_message: the final message's content is not in the rendered prompt",
            "continue_final_message");
      text.resize(at + content.size());
    }
  } catch (const Error& e) {
    // Templates reject conversations with raise_exception (e.g. roles out of order).
    bad("chat template error: " + user_message(e), "messages");
  }
  return m.tokenizer->encode(text, false);
}

}  // namespace

PreparedRequest prepare_request(const api::CompletionRequest& req, const ModelInfo& m) {
  PreparedRequest p;
  const bool chat = req.endpoint == api::Endpoint::kChatCompletions;
  const bool has_tools = chat && req.tools.is_array() && !req.tools.empty();
  if (has_tools && (req.tool_choice.mode == api::ToolChoice::Mode::kRequired ||
                    req.tool_choice.mode == api::ToolChoice::Mode::kFunction))
    bad("not supported yet: tool_choice 'required' or a named function (needs guided decoding); "
        "use 'auto'",
        "tool_choice");
  const bool use_tools = has_tools && req.tool_choice.mode != api::ToolChoice::Mode::kNone;
  if (chat) {
    p.prompts.push_back(chat_prompt(req, m, use_tools));
  } else {
    for (size_t i = 0; i < req.prompts.size(); ++i) {
      const auto& in = req.prompts[i];
      if (in.is_tokens) {
        for (int32_t t : in.token_ids)
          if (t >= m.vocab_size)
            bad(fmt::format("token id {} is outside the vocabulary of model '{}' (size {})", t,
                            m.name, m.vocab_size),
                "prompt");
        p.prompts.push_back(in.token_ids);
      } else {
        p.prompts.push_back(m.tokenizer->encode(in.text, true));
      }
      if (p.prompts.back().empty()) bad("prompt is empty after tokenization", "prompt");
    }
  }
  size_t longest = 0;
  for (const auto& ids : p.prompts) longest = std::max(longest, ids.size());
  const int64_t ctx = m.context_length;
  if (static_cast<int64_t>(longest) >= ctx)
    bad(fmt::format("This model's maximum context length is {} tokens. However, your prompt has "
                    "{} tokens; no room is left for the completion.",
                    ctx, longest),
        chat ? "messages" : "prompt");
  auto& sp = p.params;
  if (req.max_tokens) {
    if (static_cast<int64_t>(longest) + *req.max_tokens > ctx)
      bad(fmt::format("This model's maximum context length is {} tokens. However, you requested "
                      "{} tokens ({} in the prompt, {} for the completion).",
                      ctx, longest + *req.max_tokens, longest, *req.max_tokens),
          "max_tokens");
    sp.max_new_tokens = *req.max_tokens;
  } else {
    sp.max_new_tokens = static_cast<int32_t>(ctx - static_cast<int64_t>(longest));
  }
  sp.temperature = req.temperature.value_or(1.0f);
  sp.top_p = req.top_p.value_or(1.0f);
  sp.top_k = req.top_k.value_or(-1);
  sp.min_p = req.min_p.value_or(0.0f);
  sp.repetition_penalty = req.repetition_penalty.value_or(1.0f);
  sp.presence_penalty = req.presence_penalty;
  sp.frequency_penalty = req.frequency_penalty;
  sp.seed = req.seed;
  sp.min_new_tokens = std::min(req.min_tokens, sp.max_new_tokens);
  sp.ignore_eos = req.ignore_eos;
  sp.stop_token_ids = req.stop_token_ids;
  sp.top_logprobs = req.logprobs ? req.top_logprobs : -1;
  sp.n = req.n;
  try {
    sp.validate(m.vocab_size);
  } catch (const Error& e) {
    bad(user_message(e));
  }
  auto& c = p.choice;
  c.chat = chat;
  c.skip_special_tokens = req.skip_special_tokens;
  c.stop = req.stop;
  c.stop_token_ids = req.stop_token_ids;
  c.include_stop_str_in_output = req.include_stop_str_in_output;
  if (chat && !m.reasoning_parser.empty())
    c.reasoning = tokenizer::reasoning_options_for(m.reasoning_parser);
  c.parse_tool_calls = use_tools && !m.tool_call_parser.empty();
  c.logprobs = req.logprobs;
  c.return_token_ids = req.return_token_ids;
  return p;
}

}  // namespace wideserve::frontend
