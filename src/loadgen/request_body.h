// OpenAI request bodies and URL handling for the benchmark client.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "loadgen/types.h"

namespace wideserve::loadgen {

// Where to send requests: parsed from http://host[:port][/prefix].
struct HttpTarget {
  std::string host;
  std::string port = "80";
  std::string base_path;  // without a trailing slash; "" or e.g. "/proxy"
};

// Parses an http:// URL (https is not supported: benchmarks run next to the server).
HttpTarget parse_http_url(std::string_view url);

// "/v1/chat/completions" or "/v1/completions".
std::string endpoint_path(Endpoint endpoint);

struct RequestOptions {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  bool ignore_eos = true;  // with max_tokens: the output length is exactly max_tokens
  nlohmann::json extra_body = nlohmann::json::object();  // merged last (JSON merge patch)
};

// The JSON body: streaming with usage, max_tokens from the prompt, ignore_eos if set.
std::string build_request_body(const Prompt& prompt, const RequestOptions& options);

}  // namespace wideserve::loadgen
