#include "api/openai_response.h"

#include "api/json_writer.h"

namespace wideserve::api {

namespace {

bool is_chat(const ResponseMeta& meta) {
  return meta.endpoint == Endpoint::kChatCompletions;
}

// Characters (code points) in a token's text, as Python's len() counts them for text_offset.
int64_t char_count(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void write_ids(JsonWriter& w, const std::vector<int32_t>& ids) {
  w.begin_array();
  for (int32_t id : ids) w.integer(id);
  w.end_array();
}

void write_bytes(JsonWriter& w, std::string_view token) {
  w.begin_array();
  for (char c : token) w.integer(static_cast<unsigned char>(c));
  w.end_array();
}

// Chat: {"content":[{token, logprob, bytes, top_logprobs:[{token, logprob, bytes}]}]}.
void write_chat_logprobs(JsonWriter& w, const std::vector<TokenLogprobOut>& lps) {
  w.begin_object().key("content").begin_array();
  for (const auto& lp : lps) {
    w.begin_object();
    w.key("token").string(lp.token);
    w.key("logprob").number(lp.logprob);
    w.key("bytes");
    write_bytes(w, lp.token);
    w.key("top_logprobs").begin_array();
    for (const auto& t : lp.top) {
      w.begin_object();
      w.key("token").string(t.token);
      w.key("logprob").number(t.logprob);
      w.key("bytes");
      write_bytes(w, t.token);
      w.end_object();
    }
    w.end_array().end_object();
  }
  w.end_array().end_object();
}

// Completions: parallel arrays tokens / token_logprobs / top_logprobs ({token: logprob}) /
// text_offset.
void write_completion_logprobs(JsonWriter& w, const std::vector<TokenLogprobOut>& lps,
                               int64_t text_offset) {
  w.begin_object();
  w.key("tokens").begin_array();
  for (const auto& lp : lps) w.string(lp.token);
  w.end_array();
  w.key("token_logprobs").begin_array();
  for (const auto& lp : lps) w.number(lp.logprob);
  w.end_array();
  w.key("top_logprobs").begin_array();
  for (const auto& lp : lps) {
    w.begin_object();
    // Different ids can decode to the same text; a JSON object keeps one (the likeliest).
    for (size_t i = 0; i < lp.top.size(); ++i) {
      bool seen = false;
      for (size_t j = 0; j < i && !seen; ++j) seen = lp.top[j].token == lp.top[i].token;
      if (!seen) w.key(lp.top[i].token).number(lp.top[i].logprob);
    }
    w.end_object();
  }
  w.end_array();
  w.key("text_offset").begin_array();
  int64_t offset = text_offset;
  for (const auto& lp : lps) {
    w.integer(offset);
    offset += char_count(lp.token);
  }
  w.end_array();
  w.end_object();
}

void write_logprobs(JsonWriter& w, const ResponseMeta& meta, const ChoiceOut& c) {
  w.key("logprobs");
  if (!c.logprobs) {
    w.null();
  } else if (is_chat(meta)) {
    write_chat_logprobs(w, *c.logprobs);
  } else {
    write_completion_logprobs(w, *c.logprobs, c.text_offset);
  }
}

void write_stop_reason(JsonWriter& w, const nlohmann::json& r) {
  w.key("stop_reason");
  if (r.is_string())
    w.string(r.get_ref<const std::string&>());
  else if (r.is_number_unsigned())
    w.integer(static_cast<int64_t>(r.get<uint64_t>()));
  else if (r.is_number_integer())
    w.integer(r.get<int64_t>());
  else
    w.null();
}

void write_finish(JsonWriter& w, const ChoiceOut& c) {
  w.key("finish_reason");
  c.finish_reason ? w.string(*c.finish_reason) : w.null();
}

// vLLM's return_token_ids fields of one choice.
void write_choice_ids(JsonWriter& w, const ResponseMeta& meta, const ChoiceOut& c) {
  if (!is_chat(meta)) {
    const auto& prompt_ids = c.prompt_token_ids ? c.prompt_token_ids : meta.prompt_token_ids;
    if (prompt_ids) {
      w.key("prompt_token_ids");
      write_ids(w, *prompt_ids);
    }
  }
  if (c.token_ids) {
    w.key("token_ids");
    write_ids(w, *c.token_ids);
  }
}

void write_tool_calls(JsonWriter& w, const std::vector<ToolCallOut>& calls, bool delta) {
  w.key("tool_calls").begin_array();
  for (const auto& tc : calls) {
    w.begin_object();
    if (delta) w.key("index").integer(tc.index);
    if (tc.id) w.key("id").string(*tc.id);
    if (tc.type)
      w.key("type").string(*tc.type);
    else if (!delta)
      w.key("type").string("function");
    w.key("function").begin_object();
    if (tc.name)
      w.key("name").string(*tc.name);
    else if (!delta)
      w.key("name").string("");
    w.key("arguments").string(tc.arguments);
    w.end_object().end_object();
  }
  w.end_array();
}

void write_usage(JsonWriter& w, const UsageOut& u) {
  w.key("usage").begin_object();
  w.key("prompt_tokens").integer(u.prompt_tokens);
  w.key("completion_tokens").integer(u.completion_tokens);
  w.key("total_tokens").integer(u.prompt_tokens + u.completion_tokens);
  w.key("prompt_tokens_details").begin_object().key("cached_tokens").integer(u.cached_tokens);
  w.end_object().end_object();
}

void write_header(JsonWriter& w, const ResponseMeta& meta, std::string_view object) {
  w.begin_object();
  w.key("id").string(meta.id);
  w.key("object").string(object);
  w.key("created").integer(meta.created);
  w.key("model").string(meta.model);
}

size_t estimate(std::span<const ChoiceOut> choices) {
  size_t n = 256;
  for (const auto& c : choices) {
    n += 160 + c.text.size() + c.reasoning_content.size();
    if (c.logprobs) n += c.logprobs->size() * 96;
  }
  return n;
}

}  // namespace

std::string build_response(const ResponseMeta& meta, std::span<const ChoiceOut> choices,
                           const UsageOut& usage) {
  JsonWriter w(estimate(choices));
  const bool chat = is_chat(meta);
  write_header(w, meta, chat ? "chat.completion" : "text_completion");
  w.key("choices").begin_array();
  for (const auto& c : choices) {
    w.begin_object();
    w.key("index").integer(c.index);
    if (chat) {
      w.key("message").begin_object();
      w.key("role").string(c.role.value_or("assistant"));
      w.key("content");
      if (c.text.empty() && !c.tool_calls.empty())
        w.null();
      else
        w.string(c.text);
      if (!c.reasoning_content.empty()) w.key("reasoning_content").string(c.reasoning_content);
      if (!c.tool_calls.empty()) write_tool_calls(w, c.tool_calls, /*delta=*/false);
      w.end_object();
    } else {
      w.key("text").string(c.text);
    }
    write_logprobs(w, meta, c);
    write_finish(w, c);
    write_stop_reason(w, c.stop_reason);
    write_choice_ids(w, meta, c);
    w.end_object();
  }
  w.end_array();
  write_usage(w, usage);
  if (chat && meta.prompt_token_ids) {
    w.key("prompt_token_ids");
    write_ids(w, *meta.prompt_token_ids);
  }
  w.end_object();
  return w.take();
}

std::string build_chunk(const ResponseMeta& meta, std::span<const ChoiceOut> choices,
                        const std::optional<UsageOut>& usage) {
  JsonWriter w(estimate(choices));
  const bool chat = is_chat(meta);
  write_header(w, meta, chat ? "chat.completion.chunk" : "text_completion");
  w.key("choices").begin_array();
  for (const auto& c : choices) {
    w.begin_object();
    w.key("index").integer(c.index);
    if (chat) {
      w.key("delta").begin_object();
      if (c.role) w.key("role").string(*c.role);
      // The first chunk carries content "" with the role, as OpenAI sends it.
      if (!c.text.empty() || c.role) w.key("content").string(c.text);
      if (!c.reasoning_content.empty()) w.key("reasoning_content").string(c.reasoning_content);
      if (!c.tool_calls.empty()) write_tool_calls(w, c.tool_calls, /*delta=*/true);
      w.end_object();
    } else {
      w.key("text").string(c.text);
    }
    write_logprobs(w, meta, c);
    write_finish(w, c);
    if (c.finish_reason) write_stop_reason(w, c.stop_reason);
    write_choice_ids(w, meta, c);
    w.end_object();
  }
  w.end_array();
  if (usage) write_usage(w, *usage);
  if (chat && meta.prompt_token_ids) {
    w.key("prompt_token_ids");
    write_ids(w, *meta.prompt_token_ids);
  }
  w.end_object();
  return w.take();
}

std::string sse_event(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 8);
  out += "data: ";
  out += json;
  out += "\n\n";
  return out;
}

std::string sse_error_event(const ApiError& error) {
  return sse_event(error_body(error));
}

std::string models_list(std::span<const ModelCard> models) {
  JsonWriter w(64 + models.size() * 128);
  w.begin_object();
  w.key("object").string("list");
  w.key("data").begin_array();
  for (const auto& m : models) {
    w.begin_object();
    w.key("id").string(m.id);
    w.key("object").string("model");
    w.key("created").integer(m.created);
    w.key("owned_by").string(m.owned_by);
    if (m.max_model_len > 0) w.key("max_model_len").integer(m.max_model_len);
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

}  // namespace wideserve::api
