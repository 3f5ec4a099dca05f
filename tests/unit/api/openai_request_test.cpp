#include "api/openai_request.h"

#include <gtest/gtest.h>

#include <string>

namespace wideserve::api {
namespace {

using Json = nlohmann::ordered_json;

Json chat_base() {
  return Json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
}
Json completion_base() {
  return Json::parse(R"({"model":"m","prompt":"hello"})");
}

// Base body for `ep` with the keys of `extra` set (null values stay, as JSON null).
std::string body(Endpoint ep, const Json& extra = Json::object()) {
  Json b = ep == Endpoint::kChatCompletions ? chat_base() : completion_base();
  for (auto it = extra.begin(); it != extra.end(); ++it) b[it.key()] = *it;
  return b.dump();
}

CompletionRequest chat(const char* extra_json) {
  return parse_request(body(Endpoint::kChatCompletions, Json::parse(extra_json)),
                       Endpoint::kChatCompletions);
}
CompletionRequest completion(const char* extra_json) {
  return parse_request(body(Endpoint::kCompletions, Json::parse(extra_json)),
                       Endpoint::kCompletions);
}

// The ApiError parse_request throws for `raw` (fails the test when it is accepted or throws
// anything else).
ApiError reject_raw(std::string_view raw, Endpoint ep) {
  try {
    parse_request(raw, ep);
  } catch (const ApiException& e) {
    return e.error();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-ApiException: " << e.what() << " for " << raw;
    return {};
  }
  ADD_FAILURE() << "accepted: " << raw;
  return {};
}

ApiError reject(Endpoint ep, const char* extra_json) {
  return reject_raw(body(ep, Json::parse(extra_json)), ep);
}

constexpr Endpoint kChat = Endpoint::kChatCompletions;
constexpr Endpoint kCmpl = Endpoint::kCompletions;

TEST(ParseRequest, ChatDefaults) {
  CompletionRequest r = chat("{}");
  EXPECT_EQ(r.endpoint, kChat);
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"], "hi");
  EXPECT_TRUE(r.tools.is_null());
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kNone);
  EXPECT_TRUE(r.add_generation_prompt);
  EXPECT_FALSE(r.continue_final_message);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.temperature);
  EXPECT_FALSE(r.top_p);
  EXPECT_FALSE(r.top_k);
  EXPECT_FALSE(r.min_p);
  EXPECT_FALSE(r.repetition_penalty);
  EXPECT_FALSE(r.seed);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 0);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_TRUE(r.skip_special_tokens);
  EXPECT_TRUE(r.spaces_between_special_tokens);
  EXPECT_FALSE(r.return_token_ids);
  EXPECT_FALSE(r.ignore_eos);
  EXPECT_EQ(r.min_tokens, 0);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_TRUE(r.prompts.empty());
}

TEST(ParseRequest, EveryCommonField) {
  CompletionRequest r = chat(R"({
    "max_tokens": 100, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
    "n": 3, "seed": 1234, "stop": ["a", "bc"], "stop_token_ids": [1, 2],
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
    "logprobs": true, "top_logprobs": 5, "ignore_eos": true, "min_tokens": 10,
    "stream": true, "stream_options": {"include_usage": true, "continuous_usage_stats": true},
    "return_token_ids": true, "skip_special_tokens": false,
    "spaces_between_special_tokens": false, "include_stop_str_in_output": true,
    "user": "u1", "metadata": {"k": "v"}, "store": false, "parallel_tool_calls": true,
    "service_tier": "auto", "logit_bias": {}, "response_format": {"type": "text"},
    "add_generation_prompt": true, "chat_template_kwargs": {"thinking": true}})");
  EXPECT_EQ(r.max_tokens, 100);
  EXPECT_FLOAT_EQ(*r.temperature, 0.7f);
  EXPECT_FLOAT_EQ(*r.top_p, 0.9f);
  EXPECT_EQ(r.top_k, 40);
  EXPECT_FLOAT_EQ(*r.min_p, 0.05f);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.seed, 1234u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(r.stop_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_FLOAT_EQ(r.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(*r.repetition_penalty, 1.1f);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 5);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.min_tokens, 10);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.continuous_usage_stats);
  EXPECT_TRUE(r.return_token_ids);
  EXPECT_FALSE(r.skip_special_tokens);
  EXPECT_FALSE(r.spaces_between_special_tokens);
  EXPECT_TRUE(r.include_stop_str_in_output);
  EXPECT_EQ(r.user, "u1");
  EXPECT_EQ(r.chat_template_kwargs["thinking"], true);
}

TEST(ParseRequest, NullMeansAbsent) {
  CompletionRequest r = parse_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":null,
          "temperature":null,"stop":null,"seed":null,"tools":null,"tool_choice":null,
          "stream_options":null,"logit_bias":null,"response_format":null,"nvext":null,
          "user":null,"n":null,"logprobs":null,"top_logprobs":null})",
      kChat);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.temperature);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.logprobs);
}

TEST(ParseRequest, MaxCompletionTokens) {
  EXPECT_EQ(chat(R"({"max_completion_tokens": 7})").max_tokens, 7);
  EXPECT_EQ(chat(R"({"max_tokens": 7, "max_completion_tokens": 7})").max_tokens, 7);
  EXPECT_EQ(completion(R"({"max_completion_tokens": 9})").max_tokens, 9);
  ApiError e = reject(kChat, R"({"max_tokens": 7, "max_completion_tokens": 8})");
  EXPECT_EQ(e.param, "max_completion_tokens");
  EXPECT_EQ(e.status, 400);
}

TEST(ParseRequest, IntegralFloatsAreIntegers) {
  EXPECT_EQ(chat(R"({"max_tokens": 10.0})").max_tokens, 10);
  EXPECT_EQ(reject(kChat, R"({"max_tokens": 10.5})").param, "max_tokens");
}

TEST(ParseRequest, SeedKeepsBits) {
  EXPECT_EQ(chat(R"({"seed": -1})").seed, ~uint64_t{0});
  EXPECT_EQ(chat(R"({"seed": 9223372036854775807})").seed, uint64_t{9223372036854775807ull});
  EXPECT_EQ(chat(R"({"seed": -9223372036854775808})").seed, uint64_t{1} << 63);
  EXPECT_EQ(reject(kChat, R"({"seed": 9223372036854775808})").param, "seed");
  EXPECT_EQ(reject(kChat, R"({"seed": 1e30})").param, "seed");
  EXPECT_EQ(reject(kChat, R"({"seed": "1"})").param, "seed");
}

TEST(ParseRequest, TopK) {
  EXPECT_EQ(chat(R"({"top_k": 0})").top_k, -1);
  EXPECT_EQ(chat(R"({"top_k": -1})").top_k, -1);
  EXPECT_EQ(chat(R"({"top_k": 1})").top_k, 1);
  EXPECT_EQ(reject(kChat, R"({"top_k": -2})").param, "top_k");
  EXPECT_EQ(reject(kChat, R"({"top_k": 1.5})").param, "top_k");
}

TEST(ParseRequest, RangeBoundaries) {
  EXPECT_FLOAT_EQ(*chat(R"({"temperature": 0})").temperature, 0.0f);
  EXPECT_FLOAT_EQ(*chat(R"({"temperature": 2})").temperature, 2.0f);
  EXPECT_FLOAT_EQ(*chat(R"({"top_p": 1})").top_p, 1.0f);
  EXPECT_FLOAT_EQ(*chat(R"({"min_p": 0})").min_p, 0.0f);
  EXPECT_FLOAT_EQ(*chat(R"({"min_p": 1})").min_p, 1.0f);
  EXPECT_FLOAT_EQ(*chat(R"({"repetition_penalty": 2})").repetition_penalty, 2.0f);
  EXPECT_FLOAT_EQ(chat(R"({"presence_penalty": -2})").presence_penalty, -2.0f);
  EXPECT_FLOAT_EQ(chat(R"({"frequency_penalty": 2})").frequency_penalty, 2.0f);
  EXPECT_EQ(chat(R"({"n": 128})").n, 128);
  EXPECT_EQ(chat(R"({"logprobs": true, "top_logprobs": 20})").top_logprobs, 20);
  EXPECT_EQ(chat(R"({"logprobs": true, "top_logprobs": 0})").top_logprobs, 0);
  EXPECT_EQ(chat(R"({"max_tokens": 2147483647})").max_tokens, 2147483647);
  EXPECT_EQ(chat(R"({"min_tokens": 5, "max_tokens": 5})").min_tokens, 5);
  EXPECT_EQ(chat(R"({"min_tokens": 5})").min_tokens, 5);
}

struct RejectCase {
  Endpoint ep;
  const char* extra;   // merged into the endpoint's valid base body
  const char* param;   // expected ApiError.param
  const char* substr;  // expected part of the message
};

class Rejects : public ::testing::TestWithParam<RejectCase> {};

TEST_P(Rejects, WithParamAndMessage) {
  const RejectCase& c = GetParam();
  ApiError e = reject(c.ep, c.extra);
  EXPECT_EQ(e.status, 400) << c.extra;
  EXPECT_EQ(e.type, "invalid_request_error") << c.extra;
  EXPECT_EQ(e.param, c.param) << c.extra << " -> " << e.message;
  EXPECT_NE(e.message.find(c.substr), std::string::npos) << c.extra << " -> " << e.message;
}

INSTANTIATE_TEST_SUITE_P(
    Fields, Rejects,
    ::testing::Values(
        // Unknown fields, and fields of the other endpoint.
        RejectCase{kChat, R"({"foo": 1})", "foo", "Unknown field: foo"},
        RejectCase{kChat, R"({"foo": null})", "foo", "Unknown field: foo"},
        RejectCase{kChat, R"({"prompt": "x"})", "prompt", "Unknown field: prompt"},
        RejectCase{kChat, R"({"echo": false})", "echo", "Unknown field"},
        RejectCase{kChat, R"({"best_of": 1})", "best_of", "Unknown field"},
        RejectCase{kCmpl, R"({"messages": []})", "messages", "Unknown field: messages"},
        RejectCase{kCmpl, R"({"tools": []})", "tools", "Unknown field"},
        RejectCase{kCmpl, R"({"top_logprobs": 1})", "top_logprobs", "Unknown field"},
        RejectCase{kChat, R"({"functions": []})", "functions", "Unknown field"},
        // model.
        RejectCase{kChat, R"({"model": null})", "model", "model is required"},
        RejectCase{kCmpl, R"({"model": null})", "model", "model is required"},
        RejectCase{kChat, R"({"model": 5})", "model", "must be a string"},
        RejectCase{kChat, R"({"model": ""})", "model", "must not be empty"},
        // Types.
        RejectCase{kChat, R"({"temperature": "0.5"})", "temperature", "must be a number"},
        RejectCase{kChat, R"({"temperature": true})", "temperature", "must be a number"},
        RejectCase{kChat, R"({"max_tokens": "5"})", "max_tokens", "must be an integer"},
        RejectCase{kChat, R"({"n": [1]})", "n", "must be an integer"},
        RejectCase{kChat, R"({"stream": 1})", "stream", "must be a boolean"},
        RejectCase{kChat, R"({"stream": "true"})", "stream", "must be a boolean"},
        RejectCase{kChat, R"({"ignore_eos": 0})", "ignore_eos", "boolean"},
        RejectCase{kChat, R"({"skip_special_tokens": "no"})", "skip_special_tokens", "boolean"},
        RejectCase{kChat, R"({"spaces_between_special_tokens": 1})",
                   "spaces_between_special_tokens", "boolean"},
        RejectCase{kChat, R"({"include_stop_str_in_output": 1})", "include_stop_str_in_output",
                   "boolean"},
        RejectCase{kChat, R"({"return_token_ids": "yes"})", "return_token_ids", "boolean"},
        RejectCase{kChat, R"({"user": 5})", "user", "must be a string"},
        RejectCase{kChat, R"({"metadata": "x"})", "metadata", "must be an object"},
        RejectCase{kChat, R"({"store": "x"})", "store", "boolean"},
        RejectCase{kChat, R"({"parallel_tool_calls": 1})", "parallel_tool_calls", "boolean"},
        RejectCase{kChat, R"({"service_tier": 1})", "service_tier", "string"},
        RejectCase{kChat, R"({"chat_template_kwargs": []})", "chat_template_kwargs", "object"},
        RejectCase{kChat, R"({"chat_template_kwargs": {"messages": []}})",
                   "chat_template_kwargs.messages", "must not set messages"},
        RejectCase{kChat, R"({"add_generation_prompt": "x"})", "add_generation_prompt", "boolean"},
        RejectCase{kChat, R"({"logprobs": 1})", "logprobs", "must be a boolean"},
        RejectCase{kCmpl, R"({"logprobs": true})", "logprobs", "must be an integer"},
        // Ranges.
        RejectCase{kChat, R"({"temperature": -0.1})", "temperature", "[0, 2]"},
        RejectCase{kChat, R"({"temperature": 2.01})", "temperature", "[0, 2]"},
        RejectCase{kChat, R"({"top_p": 0})", "top_p", "(0, 1]"},
        RejectCase{kChat, R"({"top_p": 1.5})", "top_p", "(0, 1]"},
        RejectCase{kChat, R"({"min_p": -0.1})", "min_p", "[0, 1]"},
        RejectCase{kChat, R"({"min_p": 1.1})", "min_p", "[0, 1]"},
        RejectCase{kChat, R"({"n": 0})", "n", "between 1 and 128"},
        RejectCase{kChat, R"({"n": 129})", "n", "between 1 and 128"},
        RejectCase{kChat, R"({"max_tokens": 0})", "max_tokens", "between 1 and"},
        RejectCase{kChat, R"({"max_tokens": -5})", "max_tokens", "between 1 and"},
        RejectCase{kChat, R"({"max_tokens": 2147483648})", "max_tokens", "between 1 and"},
        RejectCase{kChat, R"({"max_completion_tokens": 0})", "max_completion_tokens", "between"},
        RejectCase{kChat, R"({"presence_penalty": 2.5})", "presence_penalty", "[-2, 2]"},
        RejectCase{kChat, R"({"frequency_penalty": -3})", "frequency_penalty", "[-2, 2]"},
        RejectCase{kChat, R"({"repetition_penalty": 0})", "repetition_penalty", "(0, 2]"},
        RejectCase{kChat, R"({"repetition_penalty": 2.5})", "repetition_penalty", "(0, 2]"},
        RejectCase{kChat, R"({"min_tokens": -1})", "min_tokens", "between 0 and"},
        RejectCase{kChat, R"({"min_tokens": 10, "max_tokens": 5})", "min_tokens",
                   "must not exceed max_tokens"},
        RejectCase{kChat, R"({"min_tokens": 10, "max_completion_tokens": 5})", "min_tokens",
                   "must not exceed"},
        RejectCase{kChat, R"({"logprobs": true, "top_logprobs": 21})", "top_logprobs",
                   "between 0 and 20"},
        RejectCase{kChat, R"({"logprobs": true, "top_logprobs": -1})", "top_logprobs",
                   "between 0 and 20"},
        RejectCase{kChat, R"({"top_logprobs": 2})", "top_logprobs", "requires logprobs"},
        RejectCase{kChat, R"({"logprobs": false, "top_logprobs": 0})", "top_logprobs",
                   "requires logprobs"},
        RejectCase{kCmpl, R"({"logprobs": 21})", "logprobs", "between 0 and 20"},
        RejectCase{kCmpl, R"({"logprobs": -1})", "logprobs", "between 0 and 20"},
        // stop and stop_token_ids.
        RejectCase{kChat, R"({"stop": 5})", "stop", "string or an array"},
        RejectCase{kChat, R"({"stop": [1]})", "stop", "must contain strings"},
        RejectCase{kChat, R"({"stop": ""})", "stop", "must not be empty"},
        RejectCase{kChat, R"({"stop": ["a", ""]})", "stop", "must not be empty"},
        RejectCase{kChat,
                   R"({"stop": ["1","2","3","4","5","6","7","8","9","10","11","12","13","14",
                                "15","16","17"]})",
                   "stop", "at most 16"},
        RejectCase{kChat, R"({"stop_token_ids": 5})", "stop_token_ids", "must be an array"},
        RejectCase{kChat, R"({"stop_token_ids": [-1]})", "stop_token_ids", "[0, 2147483647]"},
        RejectCase{kChat, R"({"stop_token_ids": [2147483648]})", "stop_token_ids", "[0, "},
        RejectCase{kChat, R"({"stop_token_ids": ["a"]})", "stop_token_ids", "integers"},
        // Streaming options.
        RejectCase{kChat, R"({"stream_options": {"include_usage": true}})", "stream_options",
                   "only allowed when stream is true"},
        RejectCase{kChat, R"({"stream": false, "stream_options": {}})", "stream_options",
                   "only allowed when stream"},
        RejectCase{kChat, R"({"stream": true, "stream_options": {"foo": true}})",
                   "stream_options.foo", "Unknown field: stream_options.foo"},
        RejectCase{kChat, R"({"stream": true, "stream_options": {"include_usage": 1}})",
                   "stream_options.include_usage", "boolean"},
        RejectCase{kChat, R"({"stream": true, "stream_options": true})", "stream_options",
                   "object"},
        // Unsupported features.
        RejectCase{kChat, R"({"logit_bias": {"5": 10}})", "logit_bias",
                   "logit_bias is not supported"},
        RejectCase{kChat, R"({"logit_bias": [1]})", "logit_bias", "object"},
        RejectCase{kChat, R"({"response_format": {"type": "json_object"}})", "response_format",
                   "not supported"},
        RejectCase{kChat, R"({"response_format": {"type": "json_schema", "json_schema": {}}})",
                   "response_format", "not supported"},
        RejectCase{kChat, R"({"response_format": {"type": "xml"}})", "response_format.type",
                   "must be 'text'"},
        RejectCase{kChat, R"({"response_format": {}})", "response_format.type", "required"},
        RejectCase{kChat, R"({"response_format": "text"})", "response_format", "object"},
        RejectCase{kCmpl, R"({"echo": true})", "echo", "echo is not supported"},
        RejectCase{kCmpl, R"({"echo": 1})", "echo", "boolean"},
        RejectCase{kCmpl, R"({"suffix": "abc"})", "suffix", "suffix is not supported"},
        RejectCase{kCmpl, R"({"best_of": 2})", "best_of", "not supported"},
        RejectCase{kCmpl, R"({"best_of": 2, "n": 3})", "best_of", "must equal n = 3"},
        // nvext.
        RejectCase{kChat, R"({"nvext": {"foo": 1}})", "nvext.foo", "Unknown field: nvext.foo"},
        RejectCase{kChat, R"({"nvext": {"use_raw_prompt": true}})", "nvext.use_raw_prompt",
                   "Unknown field"},
        RejectCase{kChat, R"({"nvext": {"top_k": -3}})", "nvext.top_k", "at least 1"},
        RejectCase{kChat, R"({"nvext": {"min_p": 2}})", "nvext.min_p", "[0, 1]"},
        RejectCase{kChat, R"({"nvext": {"repetition_penalty": 0}})", "nvext.repetition_penalty",
                   "(0, 2]"},
        RejectCase{kChat, R"({"nvext": {"ignore_eos": "yes"}})", "nvext.ignore_eos", "boolean"},
        RejectCase{kChat, R"({"nvext": {"greed_sampling": 1}})", "nvext.greed_sampling", "boolean"},
        RejectCase{kChat, R"({"nvext": 1})", "nvext", "object"},
        // continue_final_message.
        RejectCase{kChat, R"({"continue_final_message": true, "add_generation_prompt": true})",
                   "continue_final_message", "cannot both be true"}));

INSTANTIATE_TEST_SUITE_P(
    Chat, Rejects,
    ::testing::Values(
        RejectCase{kChat, R"({"messages": null})", "messages", "messages is required"},
        RejectCase{kChat, R"({"messages": []})", "messages", "must not be empty"},
        RejectCase{kChat, R"({"messages": {}})", "messages", "must be an array"},
        RejectCase{kChat, R"({"messages": ["hi"]})", "messages[0]", "must be an object"},
        RejectCase{kChat, R"({"messages": [{"content": "x"}]})", "messages[0].role",
                   "role is required"},
        RejectCase{kChat, R"({"messages": [{"role": null, "content": "x"}]})", "messages[0].role",
                   "role is required"},
        RejectCase{kChat, R"({"messages": [{"role": 1, "content": "x"}]})", "messages[0].role",
                   "must be a string"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "user", "content": "a"},
                                    {"role": "robot", "content": "x"}]})",
                   "messages[1].role", "got 'robot'"},
        RejectCase{kChat, R"({"messages": [{"role": "user"}]})", "messages[0].content",
                   "content is required"},
        RejectCase{kChat, R"({"messages": [{"role": "user", "content": null}]})",
                   "messages[0].content", "content is required"},
        RejectCase{kChat, R"({"messages": [{"role": "assistant", "content": null}]})",
                   "messages[0].content", "without tool_calls"},
        RejectCase{kChat, R"({"messages": [{"role": "user", "content": 5}]})",
                   "messages[0].content", "string or an array"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "user",
                       "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})",
                   "messages[0].content[0].type", "only text content parts"},
        RejectCase{kChat, R"({"messages": [{"role": "user", "content": [{"text": "a"}]}]})",
                   "messages[0].content[0].type", "required"},
        RejectCase{kChat, R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
                   "messages[0].content[0].text", "required"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]})",
                   "messages[0].content[0].text", "must be a string"},
        RejectCase{kChat, R"({"messages": [{"role": "user", "content": ["a"]}]})",
                   "messages[0].content[0]", "must be an object"},
        RejectCase{kChat, R"({"messages": [{"role": "user", "content": "x", "tool_calls": []}]})",
                   "messages[0].tool_calls", "only allowed on assistant"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "assistant", "content": null, "tool_calls": {}}]})",
                   "messages[0].tool_calls", "must be an array"},
        RejectCase{kChat, R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]})",
                   "messages[0].tool_calls[0].function", "required"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "assistant",
                       "tool_calls": [{"id": "c", "type": "function", "function": {}}]}]})",
                   "messages[0].tool_calls[0].function.name", "required"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c",
                       "type": "function", "function": {"name": "f", "arguments": 5}}]}]})",
                   "messages[0].tool_calls[0].function.arguments", "must be a string"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c",
                       "type": "other", "function": {"name": "f", "arguments": "{}"}}]}]})",
                   "messages[0].tool_calls[0].type", "'function'"},
        RejectCase{kChat, R"({"messages": [{"role": "tool", "content": "r", "tool_call_id": 5}]})",
                   "messages[0].tool_call_id", "must be a string"},
        RejectCase{kChat, R"({"messages": [{"role": "user", "content": "r", "name": 5}]})",
                   "messages[0].name", "must be a string"},
        RejectCase{kChat,
                   R"({"messages": [{"role": "assistant", "content": "r",
                                     "reasoning_content": 5}]})",
                   "messages[0].reasoning_content", "must be a string"},
        // tools.
        RejectCase{kChat, R"({"tools": {}})", "tools", "must be an array"},
        RejectCase{kChat, R"({"tools": [5]})", "tools[0]", "must be an object"},
        RejectCase{kChat, R"({"tools": [{"function": {"name": "f"}}]})", "tools[0].type",
                   "required"},
        RejectCase{kChat, R"({"tools": [{"type": "code", "function": {"name": "f"}}]})",
                   "tools[0].type", "'function'"},
        RejectCase{kChat, R"({"tools": [{"type": "function"}]})", "tools[0].function", "required"},
        RejectCase{kChat, R"({"tools": [{"type": "function", "function": {}}]})",
                   "tools[0].function.name", "required"},
        RejectCase{kChat, R"({"tools": [{"type": "function", "function": {"name": ""}}]})",
                   "tools[0].function.name", "must not be empty"},
        RejectCase{kChat,
                   R"({"tools": [{"type": "function", "function": {"name": "f",
                                  "parameters": []}}]})",
                   "tools[0].function.parameters", "object"},
        RejectCase{kChat,
                   R"({"tools": [{"type": "function", "function": {"name": "f",
                                  "description": 1}}]})",
                   "tools[0].function.description", "string"},
        // tool_choice.
        RejectCase{kChat, R"({"tool_choice": "sometimes"})", "tool_choice", "got 'sometimes'"},
        RejectCase{kChat, R"({"tool_choice": 1})", "tool_choice", "string or an object"},
        RejectCase{kChat, R"({"tool_choice": "required"})", "tool_choice", "requires tools"},
        RejectCase{kChat, R"({"tool_choice": {"type": "function", "function": {"name": "f"}}})",
                   "tool_choice", "requires tools"},
        RejectCase{kChat,
                   R"({"tools": [{"type": "function", "function": {"name": "f"}}],
                       "tool_choice": {"type": "function", "function": {"name": "g"}}})",
                   "tool_choice.function.name", "'g', which is not in tools"},
        RejectCase{kChat,
                   R"({"tools": [{"type": "function", "function": {"name": "f"}}],
                       "tool_choice": {"type": "function"}})",
                   "tool_choice.function", "object with a name"},
        RejectCase{kChat,
                   R"({"tools": [{"type": "function", "function": {"name": "f"}}],
                       "tool_choice": {"function": {"name": "f"}}})",
                   "tool_choice.type", "'function'"}));

INSTANTIATE_TEST_SUITE_P(
    Prompt, Rejects,
    ::testing::Values(
        RejectCase{kCmpl, R"({"prompt": null})", "prompt", "prompt is required"},
        RejectCase{kCmpl, R"({"prompt": []})", "prompt", "must not be empty"},
        RejectCase{kCmpl, R"({"prompt": [[]]})", "prompt", "must not be empty"},
        RejectCase{kCmpl, R"({"prompt": [[1], []]})", "prompt", "must not be empty"},
        RejectCase{kCmpl, R"({"prompt": 5})", "prompt", "must be a string"},
        RejectCase{kCmpl, R"({"prompt": {}})", "prompt", "must be a string"},
        RejectCase{kCmpl, R"({"prompt": ["a", 1]})", "prompt", "list of strings cannot"},
        RejectCase{kCmpl, R"({"prompt": [1, "a"]})", "prompt", "integers"},
        RejectCase{kCmpl, R"({"prompt": [1, -1]})", "prompt", "[0, 2147483647]"},
        RejectCase{kCmpl, R"({"prompt": [2147483648]})", "prompt", "[0, 2147483647]"},
        RejectCase{kCmpl, R"({"prompt": [1.5]})", "prompt", "integers"},
        RejectCase{kCmpl, R"({"prompt": [[1], 2]})", "prompt", "list of token id lists"},
        RejectCase{kCmpl, R"({"prompt": [[1, "a"]]})", "prompt", "integers"},
        RejectCase{kCmpl, R"({"prompt": [true]})", "prompt", "not a valid prompt"},
        RejectCase{kCmpl, R"({"prompt": [null]})", "prompt", "not a valid prompt"}));

TEST(ParseRequest, MalformedBodies) {
  for (const char* raw : {"", "{", "{\"model\":}", "[1,2", "{\"a\":1}x", "nul", "{'a':1}"}) {
    ApiError e = reject_raw(raw, kChat);
    EXPECT_EQ(e.status, 400) << raw;
    EXPECT_NE(e.message.find("invalid JSON"), std::string::npos) << raw << " -> " << e.message;
    EXPECT_EQ(e.message.find("[json.exception"), std::string::npos) << e.message;
  }
  for (const char* raw : {"[]", "5", "\"x\"", "null", "true"}) {
    ApiError e = reject_raw(raw, kChat);
    EXPECT_NE(e.message.find("must be a JSON object"), std::string::npos) << raw;
  }
}

TEST(ParseRequest, InvalidUtf8) {
  std::string bad_string = R"({"model":"m","messages":[{"role":"user","content":"a)";
  bad_string += "\xC3\x28";  // bad continuation byte
  bad_string += R"("}]})";
  for (std::string raw : {bad_string, std::string("{\"model\":\"\xff\"}"),
                          std::string("{\"model\":\"m\"}\xed\xa0\x80"),  // surrogate
                          std::string("{\"mo\xc0\xafl\":1}")}) {         // overlong
    ApiError e = reject_raw(raw, kChat);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.message, "invalid UTF-8 in request body");
  }
  // A lone surrogate escape is not valid Unicode either: still a 400.
  ApiError e = reject_raw(R"({"model":"\ud800","messages":[]})", kChat);
  EXPECT_EQ(e.status, 400);
  // Valid multi-byte text passes through unchanged.
  CompletionRequest r = parse_request(
      R"({"model":"m","messages":[{"role":"user","content":"héllo 🐱 \u00e9"}]})", kChat);
  EXPECT_EQ(r.messages[0]["content"], "h\xc3\xa9llo \xf0\x9f\x90\xb1 \xc3\xa9");
}

TEST(ParseRequest, NestingAndKeyLimits) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  std::string raw =
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"a":)" + deep + "}}";
  ApiError e = reject_raw(raw, kChat);
  EXPECT_NE(e.message.find("nested deeper"), std::string::npos) << e.message;
  // A very deep body must not exhaust the stack either.
  std::string very_deep(1000000, '[');
  EXPECT_EQ(reject_raw(very_deep, kChat).status, 400);

  Json many = Json::object();
  for (int i = 0; i < 2000; ++i) many["k" + std::to_string(i)] = i;
  e = reject(kChat, (R"({"metadata": )" + many.dump() + "}").c_str());
  EXPECT_NE(e.message.find("more than 1024 keys"), std::string::npos) << e.message;
}

TEST(ParseRequest, MessagesRolesAndContent) {
  CompletionRequest r = chat(R"({"messages": [
      {"role": "system", "content": "s"},
      {"role": "developer", "content": "d"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
       "name": "bob"},
      {"role": "assistant", "content": null, "reasoning_content": "think",
       "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
      {"role": "tool", "content": "42", "tool_call_id": "call_1"},
      {"role": "assistant", "content": [], "custom_key": 7}]})");
  ASSERT_EQ(r.messages.size(), 6u);
  EXPECT_EQ(r.messages[1]["role"], "developer");
  EXPECT_EQ(r.messages[2]["content"], "a\nb");  // parts joined with '\n', as vLLM does
  EXPECT_EQ(r.messages[2]["name"], "bob");
  EXPECT_TRUE(r.messages[3]["content"].is_null());
  EXPECT_EQ(r.messages[3]["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(r.messages[3]["reasoning_content"], "think");
  EXPECT_EQ(r.messages[4]["tool_call_id"], "call_1");
  EXPECT_EQ(r.messages[5]["content"], "");
  EXPECT_EQ(r.messages[5]["custom_key"], 7);  // unknown message keys reach the template
  // Assistant tool_calls without content at all; arguments given as an object.
  CompletionRequest r2 = chat(R"({"messages": [{"role": "assistant", "tool_calls": [
      {"id": "c", "function": {"name": "f", "arguments": {"x": 1}}}]}]})");
  EXPECT_FALSE(r2.messages[0].contains("content"));
}

TEST(ParseRequest, ToolsAndToolChoice) {
  const char* tools =
      R"("tools": [{"type": "function", "function": {"name": "get_weather",
          "description": "d", "parameters": {"type": "object", "properties": {"b": {}, "a": {}}},
          "strict": true}}, {"type": "function", "function": {"name": "g"}}])";
  CompletionRequest r = chat((std::string("{") + tools + "}").c_str());
  ASSERT_TRUE(r.tools.is_array());
  EXPECT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kAuto);
  // Key order of schemas is kept (templates print them with tojson).
  EXPECT_EQ(r.tools[0]["function"]["parameters"]["properties"].begin().key(), "b");

  r = chat((std::string("{") + tools + R"(, "tool_choice": "none"})").c_str());
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kNone);
  r = chat((std::string("{") + tools + R"(, "tool_choice": "required"})").c_str());
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kRequired);
  r = chat((std::string("{") + tools +
            R"(, "tool_choice": {"type": "function", "function": {"name": "g"}}})")
               .c_str());
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kFunction);
  EXPECT_EQ(r.tool_choice.function_name, "g");

  // Without tools: "auto" and "none" are accepted and mean none; empty tools mean none.
  EXPECT_EQ(chat(R"({"tool_choice": "auto"})").tool_choice.mode, ToolChoice::Mode::kNone);
  EXPECT_EQ(chat(R"({"tool_choice": "none"})").tool_choice.mode, ToolChoice::Mode::kNone);
  r = chat(R"({"tools": []})");
  EXPECT_TRUE(r.tools.is_null());
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kNone);
}

TEST(ParseRequest, Prompts) {
  CompletionRequest r = completion(R"({"prompt": "abc"})");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_FALSE(r.prompts[0].is_tokens);
  EXPECT_EQ(r.prompts[0].text, "abc");

  r = completion(R"({"prompt": ""})");  // an empty text prompt is still a prompt (BOS only)
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].text, "");

  r = completion(R"({"prompt": ["a", "b"]})");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].text, "b");

  r = completion(R"({"prompt": [0, 5, 2147483647]})");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_TRUE(r.prompts[0].is_tokens);
  EXPECT_EQ(r.prompts[0].token_ids, (std::vector<int32_t>{0, 5, 2147483647}));

  r = completion(R"({"prompt": [[1, 2], [3]]})");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0].token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(r.prompts[1].token_ids, (std::vector<int32_t>{3}));
}

TEST(ParseRequest, CompletionOnlyFields) {
  CompletionRequest r =
      completion(R"({"echo": false, "suffix": null, "best_of": 2, "n": 2, "logprobs": 3})");
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
  r = completion(R"({"logprobs": 0})");
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 0);
  EXPECT_FALSE(completion(R"({"logprobs": null})").logprobs);
  EXPECT_EQ(completion(R"({"suffix": ""})").prompts.size(), 1u);
  EXPECT_EQ(completion(R"({"best_of": 1})").n, 1);
}

TEST(ParseRequest, ChatLogprobs) {
  CompletionRequest r = chat(R"({"logprobs": true})");
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 0);
  EXPECT_FALSE(chat(R"({"logprobs": false})").logprobs);
}

TEST(ParseRequest, StopAsString) {
  EXPECT_EQ(chat(R"({"stop": "END"})").stop, (std::vector<std::string>{"END"}));
  EXPECT_TRUE(chat(R"({"stop": []})").stop.empty());
}

TEST(ParseRequest, StreamOptions) {
  CompletionRequest r = chat(R"({"stream": true, "stream_options": {}})");
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(r.include_usage);
  r = chat(R"({"stream": true, "stream_options": {"include_usage": true}})");
  EXPECT_TRUE(r.include_usage);
  EXPECT_FALSE(r.continuous_usage_stats);
  r = chat(R"({"stream": true, "stream_options": {"include_usage": null}})");
  EXPECT_FALSE(r.include_usage);
  r = chat(R"({"stream_options": null})");
  EXPECT_FALSE(r.stream);
}

TEST(ParseRequest, NvExt) {
  CompletionRequest r = chat(
      R"({"nvext": {"ignore_eos": true, "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.2}})");
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.top_k, 5);
  EXPECT_FLOAT_EQ(*r.min_p, 0.1f);
  EXPECT_FLOAT_EQ(*r.repetition_penalty, 1.2f);
  EXPECT_EQ(chat(R"({"nvext": {"top_k": 0}})").top_k, -1);
  // Top-level fields win over nvext.
  r = chat(R"({"top_k": 3, "min_p": 0.2, "repetition_penalty": 1.0, "ignore_eos": false,
              "nvext": {"ignore_eos": true, "top_k": 5, "min_p": 0.1,
                        "repetition_penalty": 1.2}})");
  EXPECT_FALSE(r.ignore_eos);
  EXPECT_EQ(r.top_k, 3);
  EXPECT_FLOAT_EQ(*r.min_p, 0.2f);
  EXPECT_FLOAT_EQ(*r.repetition_penalty, 1.0f);
  // greed_sampling forces greedy whatever the temperature.
  EXPECT_EQ(chat(R"({"temperature": 1.5, "nvext": {"greed_sampling": true}})").temperature, 0.0f);
  EXPECT_EQ(chat(R"({"temperature": 1.5, "nvext": {"greed_sampling": false}})").temperature, 1.5f);
  EXPECT_FALSE(chat(R"({"nvext": {"greed_sampling": false}})").temperature);
  EXPECT_FALSE(chat(R"({"nvext": {"top_k": null}})").top_k);
}

TEST(ParseRequest, ContinueFinalMessage) {
  CompletionRequest r = chat(R"({"continue_final_message": true})");
  EXPECT_TRUE(r.continue_final_message);
  EXPECT_FALSE(r.add_generation_prompt);  // implied when not given
  r = chat(R"({"continue_final_message": true, "add_generation_prompt": false})");
  EXPECT_FALSE(r.add_generation_prompt);
  EXPECT_FALSE(chat(R"({"add_generation_prompt": false})").add_generation_prompt);
}

TEST(ParseRequest, ChatTemplateInput) {
  CompletionRequest r = chat(R"({"tools": [{"type": "function", "function": {"name": "f"}}],
                                 "chat_template_kwargs": {"thinking": true,
                                                          "add_generation_prompt": false}})");
  Json ctx = chat_template_input(r);
  EXPECT_EQ(ctx["messages"], r.messages);
  EXPECT_EQ(ctx["tools"], r.tools);
  EXPECT_EQ(ctx["thinking"], true);
  EXPECT_EQ(ctx["add_generation_prompt"], false);  // kwargs override, as in vLLM
  Json plain = chat_template_input(chat("{}"));
  EXPECT_FALSE(plain.contains("tools"));
  EXPECT_EQ(plain["add_generation_prompt"], true);
}

TEST(ParseRequest, ErrorBody) {
  ApiError e = reject(kChat, R"({"foo": 1})");
  Json b = Json::parse(error_body(e));
  ASSERT_TRUE(b.contains("error"));
  EXPECT_EQ(b["error"]["message"], "Unknown field: foo");
  EXPECT_EQ(b["error"]["type"], "invalid_request_error");
  EXPECT_EQ(b["error"]["param"], "foo");
  EXPECT_TRUE(b["error"]["code"].is_null());
  EXPECT_FALSE(b.contains("object"));
  ApiError nf{404, "not_found_error", "The model `x` does not exist.", "", "model_not_found"};
  b = Json::parse(error_body(nf));
  EXPECT_TRUE(b["error"]["param"].is_null());
  EXPECT_EQ(b["error"]["code"], "model_not_found");
  EXPECT_EQ(b["error"]["type"], "not_found_error");
}

TEST(ParseRequest, LongUnknownKeyIsTruncatedInMessage) {
  std::string key(500, 'k');
  ApiError e = reject_raw(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],")" + key + R"(":1})", kChat);
  EXPECT_EQ(e.param, key);
  EXPECT_LT(e.message.size(), 200u);
}

}  // namespace
}  // namespace wideserve::api
