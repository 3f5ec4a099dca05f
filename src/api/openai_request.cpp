#include "api/openai_request.h"

#include <fmt/format.h>

#include <limits>
#include <string_view>
#include <vector>

#include "api/chat_fields.h"
#include "api/json_writer.h"
#include "api/request_fields.h"

namespace wideserve::api {

using detail::fail;
using detail::Json;
using detail::json_type_name;
using detail::read_bool;
using detail::read_float_in;
using detail::read_int;
using detail::read_int_in;
using detail::read_string;
using detail::require_object;

namespace {

constexpr int kMaxDepth = 128;           // nesting deeper than any real request; bounds recursion
constexpr size_t kMaxObjectKeys = 1024;  // ordered_json inserts in O(keys): bound the quadratic
constexpr size_t kMaxStop = 16;
constexpr int64_t kMaxLogprobs = 20;
constexpr int64_t kMaxN = 128;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

enum class Scope { kCommon, kChat, kCompletions };

struct FieldInfo {
  std::string_view name;
  Scope scope;
};

// Every accepted top-level field; anything else is rejected as Dynamo does.
constexpr FieldInfo kFields[] = {
    {"model", Scope::kCommon},
    {"messages", Scope::kChat},
    {"tools", Scope::kChat},
    {"tool_choice", Scope::kChat},
    {"chat_template_kwargs", Scope::kChat},
    {"add_generation_prompt", Scope::kChat},
    {"continue_final_message", Scope::kChat},
    {"top_logprobs", Scope::kChat},
    {"parallel_tool_calls", Scope::kChat},
    {"prompt", Scope::kCompletions},
    {"echo", Scope::kCompletions},
    {"suffix", Scope::kCompletions},
    {"best_of", Scope::kCompletions},
    {"max_tokens", Scope::kCommon},
    {"max_completion_tokens", Scope::kCommon},
    {"temperature", Scope::kCommon},
    {"top_p", Scope::kCommon},
    {"top_k", Scope::kCommon},
    {"min_p", Scope::kCommon},
    {"n", Scope::kCommon},
    {"seed", Scope::kCommon},
    {"stop", Scope::kCommon},
    {"stop_token_ids", Scope::kCommon},
    {"presence_penalty", Scope::kCommon},
    {"frequency_penalty", Scope::kCommon},
    {"repetition_penalty", Scope::kCommon},
    {"logprobs", Scope::kCommon},
    {"ignore_eos", Scope::kCommon},
    {"min_tokens", Scope::kCommon},
    {"stream", Scope::kCommon},
    {"stream_options", Scope::kCommon},
    {"return_token_ids", Scope::kCommon},
    {"skip_special_tokens", Scope::kCommon},
    {"spaces_between_special_tokens", Scope::kCommon},
    {"include_stop_str_in_output", Scope::kCommon},
    {"user", Scope::kCommon},
    {"metadata", Scope::kCommon},
    {"store", Scope::kCommon},
    {"service_tier", Scope::kCommon},
    {"logit_bias", Scope::kCommon},
    {"response_format", Scope::kCommon},
    {"nvext", Scope::kCommon},
};

bool is_known_field(std::string_view key, Endpoint ep) {
  for (const auto& f : kFields) {
    if (f.name != key) continue;
    if (f.scope == Scope::kCommon) return true;
    return (f.scope == Scope::kChat) == (ep == Endpoint::kChatCompletions);
  }
  return false;
}

[[noreturn]] void unknown_field(const std::string& key) {
  // The key is client text: keep the message bounded.
  std::string shown = key.size() > 100 ? key.substr(0, 100) + "..." : key;
  fail("Unknown field: " + shown, key);
}

Json parse_body(std::string_view body) {
  if (!is_valid_utf8(body)) fail("invalid UTF-8 in request body", "");
  // Bound depth (copies and dumps of nlohmann values recurse) and keys per object.
  std::vector<size_t> keys;
  auto limit = [&](int depth, Json::parse_event_t event, Json&) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxDepth)
          fail(fmt::format("request JSON is nested deeper than {}", kMaxDepth), "");
        keys.push_back(0);
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && ++keys.back() > kMaxObjectKeys)
          fail(fmt::format("a JSON object in the request has more than {} keys", kMaxObjectKeys),
               "");
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return Json::parse(body, limit);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    if (what.find("UTF-8") != std::string::npos) fail("invalid UTF-8 in request body", "");
    if (what.rfind("[json.exception", 0) == 0) {
      size_t p = what.find("] ");
      if (p != std::string::npos) what = what.substr(p + 2);
    }
    fail("invalid JSON in request body: " + what, "");
  }
}

int32_t read_token_id(const Json& v, const char* field) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(kInt32Max))
    return static_cast<int32_t>(v.get<uint64_t>());
  if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= kInt32Max)
    return static_cast<int32_t>(v.get<int64_t>());
  if (!v.is_number_integer() && !v.is_number_unsigned())
    fail(fmt::format("{} token ids must be integers, got {}", field, json_type_name(v)), field);
  fail(fmt::format("{} token ids must be in [0, {}]", field, kInt32Max), field);
}

std::vector<int32_t> read_token_ids(const Json& v, const char* field) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const auto& e : v) ids.push_back(read_token_id(e, field));
  return ids;
}

std::vector<PromptInput> parse_prompt(const Json& v) {
  std::vector<PromptInput> out;
  if (v.is_string()) {
    out.push_back({false, v.get<std::string>(), {}});
    return out;
  }
  if (!v.is_array())
    fail(fmt::format("prompt must be a string, a list of strings, a list of token ids or a list "
                     "of token id lists, got {}",
                     json_type_name(v)),
         "prompt");
  if (v.empty()) fail("prompt must not be empty", "prompt");
  const Json& first = v.front();
  if (first.is_string()) {
    for (const auto& e : v) {
      if (!e.is_string())
        fail(fmt::format("prompt: a list of strings cannot contain {}", json_type_name(e)),
             "prompt");
      out.push_back({false, e.get<std::string>(), {}});
    }
  } else if (first.is_number()) {
    out.push_back({true, {}, read_token_ids(v, "prompt")});
  } else if (first.is_array()) {
    for (const auto& e : v) {
      if (!e.is_array())
        fail(fmt::format("prompt: a list of token id lists cannot contain {}", json_type_name(e)),
             "prompt");
      if (e.empty()) fail("prompt: a token id list must not be empty", "prompt");
      out.push_back({true, {}, read_token_ids(e, "prompt")});
    }
  } else {
    fail(fmt::format("prompt: a list of {} is not a valid prompt", json_type_name(first)),
         "prompt");
  }
  return out;
}

std::vector<std::string> parse_stop(const Json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > kMaxStop)
      fail(fmt::format("stop accepts at most {} strings, got {}", kMaxStop, v.size()), "stop");
    for (const auto& e : v) {
      if (!e.is_string())
        fail(fmt::format("stop must contain strings, got {}", json_type_name(e)), "stop");
      out.push_back(e.get<std::string>());
    }
  } else {
    fail(fmt::format("stop must be a string or an array of strings, got {}", json_type_name(v)),
         "stop");
  }
  for (const auto& s : out)
    if (s.empty()) fail("stop strings must not be empty", "stop");
  return out;
}

void parse_stream_options(const Json& v, CompletionRequest& r) {
  require_object(v, "stream_options");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string name = "stream_options." + it.key();
    if (it.key() == "include_usage") {
      if (!it->is_null()) r.include_usage = read_bool(*it, name);
    } else if (it.key() == "continuous_usage_stats") {
      if (!it->is_null()) r.continuous_usage_stats = read_bool(*it, name);
    } else {
      unknown_field(name);
    }
  }
}

void check_logit_bias(const Json& v) {
  require_object(v, "logit_bias");
  if (!v.empty()) fail("logit_bias is not supported", "logit_bias");
}

void check_response_format(const Json& v) {
  require_object(v, "response_format");
  auto type = v.find("type");
  if (type == v.end()) fail("response_format.type is required", "response_format.type");
  std::string t = read_string(*type, "response_format.type");
  if (t == "text") return;
  if (t == "json_object" || t == "json_schema")
    fail(fmt::format("response_format type '{}' is not supported", t), "response_format");
  fail(fmt::format("response_format.type must be 'text', 'json_object' or 'json_schema', got '{}'",
                   t),
       "response_format.type");
}

// Dynamo's nvext: sampling knobs from before they moved to the top level. Top-level fields win.
struct NvExt {
  std::optional<bool> ignore_eos, greed_sampling;
  std::optional<int64_t> top_k;
  std::optional<float> min_p, repetition_penalty;
};

NvExt parse_nvext(const Json& v) {
  require_object(v, "nvext");
  NvExt x;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    const std::string name = "nvext." + k;
    if (k != "ignore_eos" && k != "greed_sampling" && k != "top_k" && k != "min_p" &&
        k != "repetition_penalty")
      unknown_field(name);
    if (it->is_null()) continue;
    if (k == "ignore_eos")
      x.ignore_eos = read_bool(*it, name);
    else if (k == "greed_sampling")
      x.greed_sampling = read_bool(*it, name);
    else if (k == "top_k")
      x.top_k = read_int(*it, name);
    else if (k == "min_p")
      x.min_p = read_float_in(*it, name, 0.0, 1.0);
    else
      x.repetition_penalty = read_float_in(*it, name, 0.0, 2.0, /*lo_open=*/true);
  }
  return x;
}

int32_t normalize_top_k(int64_t k, const std::string& name) {
  if (k == 0 || k == -1) return -1;
  if (k < 1) fail(fmt::format("{} must be -1 (disabled) or at least 1, got {}", name, k), name);
  return static_cast<int32_t>(std::min<int64_t>(k, kInt32Max));
}

CompletionRequest parse_impl(std::string_view body, Endpoint ep) {
  const Json doc = parse_body(body);
  if (!doc.is_object())
    fail(fmt::format("request body must be a JSON object, got {}", json_type_name(doc)), "");
  const bool chat = ep == Endpoint::kChatCompletions;
  CompletionRequest r;
  r.endpoint = ep;

  bool have_model = false, have_messages = false, have_prompt = false;
  std::optional<int64_t> max_tokens, max_completion_tokens, best_of, top_logprobs, top_k;
  std::optional<bool> add_generation_prompt, ignore_eos;
  bool have_stream_options = false, have_tool_choice = false;
  NvExt nv;

  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& k = it.key();
    const Json& v = it.value();
    if (!is_known_field(k, ep)) unknown_field(k);
    if (v.is_null()) continue;  // null means "not given" for every field
    if (k == "model") {
      r.model = read_string(v, k);
      have_model = true;
    } else if (k == "messages") {
      r.messages = detail::parse_messages(v);
      have_messages = true;
    } else if (k == "tools") {
      r.tools = detail::parse_tools(v);
    } else if (k == "tool_choice") {
      r.tool_choice = detail::parse_tool_choice(v);
      have_tool_choice = true;
    } else if (k == "chat_template_kwargs") {
      require_object(v, k);
      if (v.contains("messages"))
        fail("chat_template_kwargs must not set messages", "chat_template_kwargs.messages");
      r.chat_template_kwargs = v;
    } else if (k == "add_generation_prompt") {
      add_generation_prompt = read_bool(v, k);
    } else if (k == "continue_final_message") {
      r.continue_final_message = read_bool(v, k);
    } else if (k == "prompt") {
      r.prompts = parse_prompt(v);
      have_prompt = true;
    } else if (k == "echo") {
      if (read_bool(v, k)) fail("echo is not supported", k);
    } else if (k == "suffix") {
      if (!read_string(v, k).empty()) fail("suffix is not supported", k);
    } else if (k == "best_of") {
      best_of = read_int(v, k);
    } else if (k == "max_tokens") {
      max_tokens = read_int_in(v, k, 1, kInt32Max);
    } else if (k == "max_completion_tokens") {
      max_completion_tokens = read_int_in(v, k, 1, kInt32Max);
    } else if (k == "temperature") {
      r.temperature = read_float_in(v, k, 0.0, 2.0);
    } else if (k == "top_p") {
      r.top_p = read_float_in(v, k, 0.0, 1.0, /*lo_open=*/true);
    } else if (k == "top_k") {
      top_k = read_int(v, k);
      r.top_k = normalize_top_k(*top_k, k);
    } else if (k == "min_p") {
      r.min_p = read_float_in(v, k, 0.0, 1.0);
    } else if (k == "n") {
      r.n = static_cast<int32_t>(read_int_in(v, k, 1, kMaxN));
    } else if (k == "seed") {
      r.seed = static_cast<uint64_t>(read_int(v, k));
    } else if (k == "stop") {
      r.stop = parse_stop(v);
    } else if (k == "stop_token_ids") {
      detail::require_array(v, k);
      r.stop_token_ids = read_token_ids(v, "stop_token_ids");
    } else if (k == "presence_penalty") {
      r.presence_penalty = read_float_in(v, k, -2.0, 2.0);
    } else if (k == "frequency_penalty") {
      r.frequency_penalty = read_float_in(v, k, -2.0, 2.0);
    } else if (k == "repetition_penalty") {
      r.repetition_penalty = read_float_in(v, k, 0.0, 2.0, /*lo_open=*/true);
    } else if (k == "logprobs") {
      if (chat) {
        r.logprobs = read_bool(v, k);
      } else {
        r.logprobs = true;
        r.top_logprobs = static_cast<int32_t>(read_int_in(v, k, 0, kMaxLogprobs));
      }
    } else if (k == "top_logprobs") {
      top_logprobs = read_int_in(v, k, 0, kMaxLogprobs);
    } else if (k == "ignore_eos") {
      ignore_eos = read_bool(v, k);
    } else if (k == "min_tokens") {
      r.min_tokens = static_cast<int32_t>(read_int_in(v, k, 0, kInt32Max));
    } else if (k == "stream") {
      r.stream = read_bool(v, k);
    } else if (k == "stream_options") {
      parse_stream_options(v, r);
      have_stream_options = true;
    } else if (k == "return_token_ids") {
      r.return_token_ids = read_bool(v, k);
    } else if (k == "skip_special_tokens") {
      r.skip_special_tokens = read_bool(v, k);
    } else if (k == "spaces_between_special_tokens") {
      r.spaces_between_special_tokens = read_bool(v, k);
    } else if (k == "include_stop_str_in_output") {
      r.include_stop_str_in_output = read_bool(v, k);
    } else if (k == "user") {
      r.user = read_string(v, k);
    } else if (k == "metadata") {
      require_object(v, k);
    } else if (k == "store" || k == "parallel_tool_calls") {
      read_bool(v, k);
    } else if (k == "service_tier") {
      read_string(v, k);
    } else if (k == "logit_bias") {
      check_logit_bias(v);
    } else if (k == "response_format") {
      check_response_format(v);
    } else if (k == "nvext") {
      nv = parse_nvext(v);
    }
  }

  // Required fields.
  if (!have_model) fail("model is required", "model");
  if (r.model.empty()) fail("model must not be empty", "model");
  if (chat && !have_messages) fail("messages is required", "messages");
  if (!chat && !have_prompt) fail("prompt is required", "prompt");

  // Cross-field rules.
  if (max_tokens && max_completion_tokens && *max_tokens != *max_completion_tokens)
    fail(fmt::format("max_tokens ({}) and max_completion_tokens ({}) disagree; give one",
                     *max_tokens, *max_completion_tokens),
         "max_completion_tokens");
  if (max_tokens || max_completion_tokens)
    r.max_tokens = static_cast<int32_t>(max_tokens ? *max_tokens : *max_completion_tokens);
  if (r.max_tokens && r.min_tokens > *r.max_tokens)
    fail(
        fmt::format("min_tokens ({}) must not exceed max_tokens ({})", r.min_tokens, *r.max_tokens),
        "min_tokens");
  if (best_of && *best_of != r.n)
    fail(fmt::format("best_of is not supported (it must equal n = {}), got {}", r.n, *best_of),
         "best_of");
  if (top_logprobs) {
    if (!r.logprobs) fail("top_logprobs requires logprobs to be true", "top_logprobs");
    r.top_logprobs = static_cast<int32_t>(*top_logprobs);
  }
  if (have_stream_options && !r.stream)
    fail("stream_options is only allowed when stream is true", "stream_options");
  if (r.continue_final_message) {
    if (add_generation_prompt.value_or(false))
      fail("continue_final_message and add_generation_prompt cannot both be true",
           "continue_final_message");
    r.add_generation_prompt = false;
  } else {
    r.add_generation_prompt = add_generation_prompt.value_or(true);
  }

  // Tools and tool_choice.
  const bool has_tools = !r.tools.is_null();
  using Mode = ToolChoice::Mode;
  if (!have_tool_choice) {
    r.tool_choice.mode = has_tools ? Mode::kAuto : Mode::kNone;
  } else if (r.tool_choice.mode == Mode::kRequired || r.tool_choice.mode == Mode::kFunction) {
    if (!has_tools)
      fail("tool_choice requires tools when it is 'required' or names a function", "tool_choice");
    if (r.tool_choice.mode == Mode::kFunction) {
      bool found = false;
      for (const auto& t : r.tools)
        found = found || t["function"]["name"] == r.tool_choice.function_name;
      if (!found)
        fail(fmt::format("tool_choice names function '{}', which is not in tools",
                         r.tool_choice.function_name),
             "tool_choice.function.name");
    }
  } else if (!has_tools) {
    r.tool_choice.mode = Mode::kNone;
  }

  // nvext fills what the top level left unset; greed_sampling forces greedy.
  if (!top_k && nv.top_k) r.top_k = normalize_top_k(*nv.top_k, "nvext.top_k");
  if (!r.min_p && nv.min_p) r.min_p = nv.min_p;
  if (!r.repetition_penalty && nv.repetition_penalty) r.repetition_penalty = nv.repetition_penalty;
  r.ignore_eos = ignore_eos.value_or(nv.ignore_eos.value_or(false));
  if (nv.greed_sampling.value_or(false)) r.temperature = 0.0f;
  return r;
}

}  // namespace

CompletionRequest parse_request(std::string_view body, Endpoint ep) {
  try {
    return parse_impl(body, ep);
  } catch (const ApiException&) {
    throw;
  } catch (const nlohmann::json::exception& e) {
    // Defensive: a JSON access we did not guard is still the client's bad input.
    fail(std::string("invalid request: ") + e.what(), "");
  }
}

nlohmann::ordered_json chat_template_input(const CompletionRequest& req) {
  Json ctx = Json::object();
  ctx["messages"] = req.messages;
  if (!req.tools.is_null()) ctx["tools"] = req.tools;
  ctx["add_generation_prompt"] = req.add_generation_prompt;
  // As in vLLM, chat_template_kwargs override the standard variables (never messages).
  for (auto it = req.chat_template_kwargs.begin(); it != req.chat_template_kwargs.end(); ++it)
    ctx[it.key()] = it.value();
  return ctx;
}

}  // namespace wideserve::api
