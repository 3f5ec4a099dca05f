#include "api/chat_fields.h"

#include <fmt/format.h>

#include <array>

namespace wideserve::api::detail {

namespace {

constexpr std::array<std::string_view, 5> kRoles = {"system", "user", "assistant", "tool",
                                                    "developer"};

// Content as a string: a string as is, text parts joined with '\n' (as vLLM does).
Json flatten_content(const Json& content, const std::string& name) {
  if (content.is_string()) return content;
  if (!content.is_array())
    fail(fmt::format("{} must be a string or an array of content parts, got {}", name,
                     json_type_name(content)),
         name);
  std::string text;
  for (size_t j = 0; j < content.size(); ++j) {
    const Json& part = content[j];
    std::string pname = fmt::format("{}[{}]", name, j);
    require_object(part, pname);
    auto type = part.find("type");
    if (type == part.end()) fail(pname + ".type is required", pname + ".type");
    std::string t = read_string(*type, pname + ".type");
    if (t != "text")
      fail(fmt::format("{}.type: only text content parts are supported, got '{}'", pname, t),
           pname + ".type");
    auto txt = part.find("text");
    if (txt == part.end()) fail(pname + ".text is required", pname + ".text");
    if (j > 0) text += '\n';
    text += read_string(*txt, pname + ".text");
  }
  return text;
}

void check_assistant_tool_calls(const Json& calls, const std::string& name) {
  require_array(calls, name);
  for (size_t j = 0; j < calls.size(); ++j) {
    std::string cname = fmt::format("{}[{}]", name, j);
    const Json& call = require_object(calls[j], cname);
    if (auto id = call.find("id"); id != call.end() && !id->is_null())
      read_string(*id, cname + ".id");
    if (auto type = call.find("type"); type != call.end() && !type->is_null()) {
      if (read_string(*type, cname + ".type") != "function")
        fail(cname + ".type must be 'function'", cname + ".type");
    }
    auto fn = call.find("function");
    if (fn == call.end()) fail(cname + ".function is required", cname + ".function");
    require_object(*fn, cname + ".function");
    auto fname = fn->find("name");
    if (fname == fn->end()) fail(cname + ".function.name is required", cname + ".function.name");
    read_string(*fname, cname + ".function.name");
    auto args = fn->find("arguments");
    // OpenAI sends a JSON string; some clients send the object itself, which templates accept.
    if (args != fn->end() && !args->is_string() && !args->is_object())
      fail(fmt::format("{}.function.arguments must be a string, got {}", cname,
                       json_type_name(*args)),
           cname + ".function.arguments");
  }
}

}  // namespace

Json parse_messages(const Json& v) {
  require_array(v, "messages");
  if (v.empty()) fail("messages must not be empty", "messages");
  Json out = Json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    std::string name = fmt::format("messages[{}]", i);
    const Json& m = require_object(v[i], name);
    auto role_it = m.find("role");
    if (role_it == m.end() || role_it->is_null()) fail(name + ".role is required", name + ".role");
    std::string role = read_string(*role_it, name + ".role");
    bool known = false;
    for (auto r : kRoles) known = known || r == role;
    if (!known)
      fail(fmt::format("{}.role must be one of system, user, assistant, tool, developer; got '{}'",
                       name, role),
           name + ".role");
    Json msg = m;
    bool has_tool_calls = false;
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      if (role != "assistant")
        fail(fmt::format("{}.tool_calls is only allowed on assistant messages", name),
             name + ".tool_calls");
      check_assistant_tool_calls(*tc, name + ".tool_calls");
      has_tool_calls = !tc->empty();
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      if (!(role == "assistant" && has_tool_calls))
        fail(fmt::format("{}.content is required for {} messages{}", name, role,
                         role == "assistant" ? " without tool_calls" : ""),
             name + ".content");
    } else {
      msg["content"] = flatten_content(*content, name + ".content");
    }
    if (auto id = m.find("tool_call_id"); id != m.end() && !id->is_null())
      read_string(*id, name + ".tool_call_id");
    if (auto nm = m.find("name"); nm != m.end() && !nm->is_null()) read_string(*nm, name + ".name");
    if (auto rc = m.find("reasoning_content"); rc != m.end() && !rc->is_null())
      read_string(*rc, name + ".reasoning_content");
    out.push_back(std::move(msg));
  }
  return out;
}

Json parse_tools(const Json& v) {
  require_array(v, "tools");
  if (v.empty()) return nullptr;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string name = fmt::format("tools[{}]", i);
    const Json& t = require_object(v[i], name);
    auto type = t.find("type");
    if (type == t.end()) fail(name + ".type is required", name + ".type");
    if (read_string(*type, name + ".type") != "function")
      fail(name + ".type must be 'function'", name + ".type");
    auto fn = t.find("function");
    if (fn == t.end()) fail(name + ".function is required", name + ".function");
    require_object(*fn, name + ".function");
    auto fname = fn->find("name");
    if (fname == fn->end()) fail(name + ".function.name is required", name + ".function.name");
    if (read_string(*fname, name + ".function.name").empty())
      fail(name + ".function.name must not be empty", name + ".function.name");
    if (auto d = fn->find("description"); d != fn->end() && !d->is_null())
      read_string(*d, name + ".function.description");
    if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null())
      require_object(*p, name + ".function.parameters");
    if (auto s = fn->find("strict"); s != fn->end() && !s->is_null())
      read_bool(*s, name + ".function.strict");
  }
  return v;
}

ToolChoice parse_tool_choice(const Json& v) {
  ToolChoice tc;
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s == "none")
      tc.mode = ToolChoice::Mode::kNone;
    else if (s == "auto")
      tc.mode = ToolChoice::Mode::kAuto;
    else if (s == "required")
      tc.mode = ToolChoice::Mode::kRequired;
    else
      fail(fmt::format("tool_choice must be 'none', 'auto', 'required' or an object naming a "
                       "function, got '{}'",
                       s),
           "tool_choice");
    return tc;
  }
  if (!v.is_object())
    fail(fmt::format("tool_choice must be a string or an object, got {}", json_type_name(v)),
         "tool_choice");
  auto type = v.find("type");
  if (type == v.end() || !type->is_string() || type->get<std::string>() != "function")
    fail("tool_choice.type must be 'function'", "tool_choice.type");
  auto fn = v.find("function");
  if (fn == v.end() || !fn->is_object())
    fail("tool_choice.function must be an object with a name", "tool_choice.function");
  auto name = fn->find("name");
  if (name == fn->end()) fail("tool_choice.function.name is required", "tool_choice.function.name");
  tc.function_name = read_string(*name, "tool_choice.function.name");
  tc.mode = ToolChoice::Mode::kFunction;
  return tc;
}

}  // namespace wideserve::api::detail
