#include "loadgen/request_body.h"

#include "common/check.h"

namespace wideserve::loadgen {

HttpTarget parse_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  WS_CHECK_ARG(url.substr(0, kScheme.size()) == kScheme,
               "--url must start with http:// (https is not supported), got '{}'", url);
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpTarget t;
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    // Accept a URL that already names the API root.
    if (path.size() >= 3 && path.substr(path.size() - 3) == "/v1") path.remove_suffix(3);
    t.base_path = std::string(path);
  }
  if (!authority.empty() && authority[0] == '[') {  // [ipv6]:port
    size_t close = authority.find(']');
    WS_CHECK_ARG(close != std::string_view::npos, "bad IPv6 host in '{}'", url);
    t.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      WS_CHECK_ARG(after[0] == ':', "bad host:port in '{}'", url);
      t.port = std::string(after.substr(1));
    }
  } else {
    size_t colon = authority.rfind(':');
    t.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) t.port = std::string(authority.substr(colon + 1));
  }
  WS_CHECK_ARG(!t.host.empty(), "no host in '{}'", url);
  WS_CHECK_ARG(!t.port.empty() && t.port.find_first_not_of("0123456789") == std::string::npos,
               "bad port in '{}'", url);
  return t;
}

std::string endpoint_path(Endpoint endpoint) {
  return endpoint == Endpoint::kChat ? "/v1/chat/completions" : "/v1/completions";
}

std::string build_request_body(const Prompt& prompt, const RequestOptions& options) {
  nlohmann::json body = nlohmann::json::object();
  body["model"] = options.model;
  if (options.endpoint == Endpoint::kChat) {
    WS_CHECK_ARG(prompt.token_ids.empty(), "token-id prompts need the completions endpoint");
    nlohmann::json messages = nlohmann::json::array();
    if (!prompt.system.empty())
      messages.push_back({{"role", "system"}, {"content", prompt.system}});
    messages.push_back({{"role", "user"}, {"content", prompt.text}});
    body["messages"] = std::move(messages);
  } else if (!prompt.token_ids.empty()) {
    body["prompt"] = prompt.token_ids;
  } else {
    body["prompt"] = prompt.system.empty() ? prompt.text : prompt.system + "\n\n" + prompt.text;
  }
  body["max_tokens"] = prompt.output_tokens;
  if (options.ignore_eos) body["ignore_eos"] = true;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  if (!options.extra_body.is_null()) body.merge_patch(options.extra_body);
  return body.dump();
}

}  // namespace wideserve::loadgen
