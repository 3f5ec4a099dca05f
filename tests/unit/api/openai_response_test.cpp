#include "api/openai_response.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace wideserve::api {
namespace {

using Json = nlohmann::json;

ResponseMeta chat_meta() {
  ResponseMeta m;
  m.endpoint = Endpoint::kChatCompletions;
  m.id = "chatcmpl-1";
  m.created = 1700000000;
  m.model = "deepseek";
  return m;
}

ResponseMeta completion_meta() {
  ResponseMeta m = chat_meta();
  m.endpoint = Endpoint::kCompletions;
  m.id = "cmpl-1";
  return m;
}

Json parse(const std::string& s) {
  EXPECT_EQ(s.find('\n'), std::string::npos) << "compact JSON expected: " << s;
  return Json::parse(s);
}

TEST(BuildResponse, ChatBasic) {
  ChoiceOut c;
  c.text = "Hello \"world\"\n";
  c.finish_reason = "stop";
  UsageOut u{10, 4, 8};
  Json j = parse(build_response(chat_meta(), std::span(&c, 1), u));
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "deepseek");
  ASSERT_EQ(j["choices"].size(), 1u);
  const Json& ch = j["choices"][0];
  EXPECT_EQ(ch["index"], 0);
  EXPECT_EQ(ch["message"]["role"], "assistant");
  EXPECT_EQ(ch["message"]["content"], "Hello \"world\"\n");
  EXPECT_FALSE(ch["message"].contains("reasoning_content"));
  EXPECT_FALSE(ch["message"].contains("tool_calls"));
  EXPECT_TRUE(ch["logprobs"].is_null());
  EXPECT_EQ(ch["finish_reason"], "stop");
  EXPECT_TRUE(ch["stop_reason"].is_null());
  EXPECT_FALSE(ch.contains("token_ids"));
  EXPECT_FALSE(j.contains("prompt_token_ids"));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_EQ(j["usage"]["total_tokens"], 14);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 8);
}

TEST(BuildResponse, ChatToolCallsReasoningAndIds) {
  std::vector<ChoiceOut> cs(2);
  cs[0].index = 0;
  cs[0].reasoning_content = "let me think";
  cs[0].tool_calls.push_back({0, "call_a", "function", "get_weather", R"({"city":"Paris"})"});
  cs[0].tool_calls.push_back({1, "call_b", std::nullopt, "f2", "{}"});
  cs[0].finish_reason = "tool_calls";
  cs[0].token_ids = std::vector<int32_t>{5, 6, 7};
  cs[1].index = 1;
  cs[1].text = "plain";
  cs[1].finish_reason = "stop";
  cs[1].stop_reason = "###";
  cs[1].token_ids = std::vector<int32_t>{};
  ResponseMeta meta = chat_meta();
  meta.prompt_token_ids = std::vector<int32_t>{1, 2, 3};
  Json j = parse(build_response(meta, cs, UsageOut{3, 4, 0}));
  const Json& m0 = j["choices"][0]["message"];
  EXPECT_TRUE(m0["content"].is_null());  // no text but tool calls: null, as OpenAI
  EXPECT_EQ(m0["reasoning_content"], "let me think");
  ASSERT_EQ(m0["tool_calls"].size(), 2u);
  EXPECT_EQ(m0["tool_calls"][0]["id"], "call_a");
  EXPECT_EQ(m0["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m0["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(m0["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_FALSE(m0["tool_calls"][0].contains("index"));  // non-streaming calls have no index
  EXPECT_EQ(m0["tool_calls"][1]["type"], "function");   // defaulted
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(j["choices"][0]["token_ids"], Json({5, 6, 7}));
  EXPECT_EQ(j["choices"][1]["message"]["content"], "plain");
  EXPECT_EQ(j["choices"][1]["stop_reason"], "###");
  EXPECT_EQ(j["choices"][1]["token_ids"], Json::array());
  EXPECT_EQ(j["choices"][1]["index"], 1);
  // Chat: prompt_token_ids at the top level (vLLM), not in the choices.
  EXPECT_EQ(j["prompt_token_ids"], Json({1, 2, 3}));
  EXPECT_FALSE(j["choices"][0].contains("prompt_token_ids"));
}

TEST(BuildResponse, EmptyContentWithoutToolCallsIsEmptyString) {
  ChoiceOut c;
  c.finish_reason = "length";
  Json j = parse(build_response(chat_meta(), std::span(&c, 1), UsageOut{}));
  EXPECT_EQ(j["choices"][0]["message"]["content"], "");
}

TEST(BuildResponse, StopReasonTokenId) {
  ChoiceOut c;
  c.finish_reason = "stop";
  c.stop_reason = 128001;
  Json j = parse(build_response(chat_meta(), std::span(&c, 1), UsageOut{}));
  EXPECT_EQ(j["choices"][0]["stop_reason"], 128001);
}

TEST(BuildResponse, ChatLogprobs) {
  ChoiceOut c;
  c.text = "Hi\xc3\xa9";
  c.logprobs = std::vector<TokenLogprobOut>{
      {"Hi", -0.25f, {{"Hi", -0.25f}, {"Hello", -1.5f}}},
      {"\xc3", -0.5f, {}},  // half of a 2-byte character
      {"\xa9", -std::numeric_limits<float>::infinity(), {}},
  };
  c.finish_reason = "stop";
  Json j = parse(build_response(chat_meta(), std::span(&c, 1), UsageOut{}));
  const Json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  EXPECT_EQ(content[0]["token"], "Hi");
  EXPECT_DOUBLE_EQ(content[0]["logprob"].get<double>(), -0.25);
  EXPECT_EQ(content[0]["bytes"], Json({72, 105}));
  ASSERT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "Hello");
  EXPECT_DOUBLE_EQ(content[0]["top_logprobs"][1]["logprob"].get<double>(), -1.5);
  EXPECT_EQ(content[0]["top_logprobs"][1]["bytes"], Json({72, 101, 108, 108, 111}));
  // Partial UTF-8: the string is repaired, bytes carry the exact token.
  EXPECT_EQ(content[1]["token"], "\xef\xbf\xbd");
  EXPECT_EQ(content[1]["bytes"], Json({0xc3}));
  EXPECT_EQ(content[1]["top_logprobs"], Json::array());
  EXPECT_DOUBLE_EQ(content[2]["logprob"].get<double>(), -9999.0);  // -inf floor, as vLLM
}

TEST(BuildResponse, Completion) {
  std::vector<ChoiceOut> cs(2);
  cs[0].text = "ab";
  cs[0].finish_reason = "length";
  cs[0].token_ids = std::vector<int32_t>{9};
  cs[1].index = 1;
  cs[1].text = "cd";
  cs[1].finish_reason = "stop";
  cs[1].stop_reason = 2;
  cs[1].prompt_token_ids = std::vector<int32_t>{4, 4};  // a second prompt of a batch
  ResponseMeta meta = completion_meta();
  meta.prompt_token_ids = std::vector<int32_t>{1, 2};
  Json j = parse(build_response(meta, cs, UsageOut{4, 2, 0}));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["id"], "cmpl-1");
  EXPECT_EQ(j["choices"][0]["text"], "ab");
  EXPECT_FALSE(j["choices"][0].contains("message"));
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["token_ids"], Json({9}));
  // Completions: prompt_token_ids per choice (vLLM), never at the top level.
  EXPECT_EQ(j["choices"][0]["prompt_token_ids"], Json({1, 2}));
  EXPECT_EQ(j["choices"][1]["prompt_token_ids"], Json({4, 4}));
  EXPECT_FALSE(j.contains("prompt_token_ids"));
  EXPECT_EQ(j["choices"][1]["stop_reason"], 2);
  EXPECT_EQ(j["usage"]["total_tokens"], 6);
}

TEST(BuildResponse, CompletionLogprobs) {
  ChoiceOut c;
  c.text = "A\xc3\xa9 b";
  c.text_offset = 5;
  c.logprobs = std::vector<TokenLogprobOut>{
      {"A\xc3\xa9", -0.1f, {{"A\xc3\xa9", -0.1f}, {"B", -2.0f}, {"B", -3.0f}}},
      {" b", -1.0f, {{" c", -0.5f}, {" b", -1.0f}}},
  };
  c.finish_reason = "stop";
  Json j = parse(build_response(completion_meta(), std::span(&c, 1), UsageOut{}));
  const Json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], Json({"A\xc3\xa9", " b"}));
  ASSERT_EQ(lp["token_logprobs"].size(), 2u);
  EXPECT_FLOAT_EQ(lp["token_logprobs"][0].get<float>(), -0.1f);
  EXPECT_FLOAT_EQ(lp["token_logprobs"][1].get<float>(), -1.0f);
  ASSERT_EQ(lp["top_logprobs"].size(), 2u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);  // duplicate text "B": the likelier kept
  EXPECT_FLOAT_EQ(lp["top_logprobs"][0]["B"].get<float>(), -2.0f);
  EXPECT_FLOAT_EQ(lp["top_logprobs"][1][" c"].get<float>(), -0.5f);
  // text_offset counts characters from the piece's start offset ("Aé" is 2 characters).
  EXPECT_EQ(lp["text_offset"], Json({5, 7}));
}

TEST(BuildResponse, FloatsRoundTripExactly) {
  ChoiceOut c;
  std::vector<float> values = {-0.1f, -1e-8f, -123.456f, 0.0f, -3.4028235e38f, -1.17549435e-38f};
  c.logprobs.emplace();
  for (float v : values) c.logprobs->push_back({"t", v, {}});
  std::string s = build_response(chat_meta(), std::span(&c, 1), UsageOut{});
  Json j = parse(s);
  for (size_t i = 0; i < values.size(); ++i) {
    const Json& v = j["choices"][0]["logprobs"]["content"][i]["logprob"];
    EXPECT_TRUE(v.is_number_float()) << "logprob must read as a float: " << s;
    EXPECT_EQ(v.get<float>(), values[i]);
  }
}

TEST(BuildChunk, ChatFirstMiddleAndFinal) {
  ResponseMeta meta = chat_meta();
  meta.prompt_token_ids = std::vector<int32_t>{1, 2};
  ChoiceOut first;
  first.role = "assistant";
  first.token_ids = std::vector<int32_t>{};
  Json j = parse(build_chunk(meta, std::span(&first, 1), std::nullopt));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["choices"][0]["delta"], Json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(j["choices"][0].contains("stop_reason"));
  EXPECT_EQ(j["prompt_token_ids"], Json({1, 2}));
  EXPECT_FALSE(j.contains("usage"));

  meta.prompt_token_ids.reset();  // only the first chunk carries them
  ChoiceOut mid;
  mid.text = "tok";
  mid.token_ids = std::vector<int32_t>{42};
  j = parse(build_chunk(meta, std::span(&mid, 1), std::nullopt));
  EXPECT_EQ(j["choices"][0]["delta"], Json({{"content", "tok"}}));
  EXPECT_EQ(j["choices"][0]["token_ids"], Json({42}));
  EXPECT_FALSE(j.contains("prompt_token_ids"));

  ChoiceOut reasoning;
  reasoning.reasoning_content = "hmm";
  j = parse(build_chunk(meta, std::span(&reasoning, 1), std::nullopt));
  EXPECT_EQ(j["choices"][0]["delta"], Json({{"reasoning_content", "hmm"}}));

  ChoiceOut last;
  last.finish_reason = "stop";
  last.stop_reason = "</s>";
  j = parse(build_chunk(meta, std::span(&last, 1), UsageOut{2, 3, 1}));
  EXPECT_EQ(j["choices"][0]["delta"], Json::object());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][0]["stop_reason"], "</s>");
  EXPECT_EQ(j["usage"]["total_tokens"], 5);  // continuous usage stats
}

TEST(BuildChunk, ChatToolCallDeltas) {
  ChoiceOut c;
  c.tool_calls.push_back({0, "call_1", "function", "get_weather", ""});
  c.tool_calls.push_back({0, std::nullopt, std::nullopt, std::nullopt, "{\"ci"});
  Json j = parse(build_chunk(chat_meta(), std::span(&c, 1), std::nullopt));
  const Json& tc = j["choices"][0]["delta"]["tool_calls"];
  ASSERT_EQ(tc.size(), 2u);
  EXPECT_EQ(tc[0], Json::parse(R"({"index":0,"id":"call_1","type":"function",
                                   "function":{"name":"get_weather","arguments":""}})"));
  EXPECT_EQ(tc[1], Json::parse(R"({"index":0,"function":{"arguments":"{\"ci"}})"));
  EXPECT_FALSE(j["choices"][0]["delta"].contains("content"));
}

TEST(BuildChunk, ChatLogprobsInChunk) {
  ChoiceOut c;
  c.text = "x";
  c.logprobs = std::vector<TokenLogprobOut>{{"x", -0.5f, {{"x", -0.5f}}}};
  Json j = parse(build_chunk(chat_meta(), std::span(&c, 1), std::nullopt));
  EXPECT_EQ(j["choices"][0]["logprobs"]["content"][0]["bytes"], Json({120}));
}

TEST(BuildChunk, UsageOnlyFinalChunk) {
  Json j = parse(build_chunk(chat_meta(), {}, UsageOut{7, 9, 0}));
  EXPECT_EQ(j["choices"], Json::array());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["completion_tokens"], 9);
  EXPECT_EQ(j["usage"]["total_tokens"], 16);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  j = parse(build_chunk(completion_meta(), {}, UsageOut{1, 1, 0}));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"], Json::array());
}

TEST(BuildChunk, Completion) {
  ResponseMeta meta = completion_meta();
  meta.prompt_token_ids = std::vector<int32_t>{3, 4};
  std::vector<ChoiceOut> cs(2);
  cs[0].text = "a";
  cs[0].token_ids = std::vector<int32_t>{11};
  cs[0].logprobs = std::vector<TokenLogprobOut>{{"a", -0.5f, {{"a", -0.5f}}}};
  cs[0].text_offset = 3;
  cs[1].index = 1;
  cs[1].text = "";
  cs[1].finish_reason = "length";
  Json j = parse(build_chunk(meta, cs, std::nullopt));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "a");
  EXPECT_EQ(j["choices"][0]["prompt_token_ids"], Json({3, 4}));  // per choice (vLLM)
  EXPECT_EQ(j["choices"][0]["token_ids"], Json({11}));
  EXPECT_EQ(j["choices"][0]["logprobs"]["text_offset"], Json({3}));
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(j["choices"][0].contains("stop_reason"));
  EXPECT_EQ(j["choices"][1]["text"], "");
  EXPECT_EQ(j["choices"][1]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][1]["stop_reason"].is_null());
  EXPECT_FALSE(j.contains("prompt_token_ids"));
}

TEST(BuildChunk, InvalidUtf8TextIsRepaired) {
  ChoiceOut c;
  c.text = std::string("ok\xe4\xbd") + "\x01";  // cut 3-byte char + control char
  std::string s = build_chunk(chat_meta(), std::span(&c, 1), std::nullopt);
  Json j = parse(s);
  EXPECT_EQ(j["choices"][0]["delta"]["content"], "ok\xef\xbf\xbd\xef\xbf\xbd\x01");
  EXPECT_NE(s.find("\\u0001"), std::string::npos);
}

TEST(Sse, Framing) {
  EXPECT_EQ(sse_event(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  ApiError e{500, "server_error", "worker died", "", ""};
  std::string ev = sse_error_event(e);
  ASSERT_EQ(ev.rfind("data: ", 0), 0u);
  ASSERT_EQ(ev.substr(ev.size() - 2), "\n\n");
  Json j = Json::parse(ev.substr(6, ev.size() - 8));
  EXPECT_EQ(j["error"]["message"], "worker died");
  EXPECT_EQ(j["error"]["type"], "server_error");
}

TEST(ModelsList, Shape) {
  std::vector<ModelCard> ms = {{"deepseek-r1", 1700000000, "wideserve", 163840},
                               {"other", 5, "wideserve", 0}};
  Json j = parse(models_list(ms));
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][0]["id"], "deepseek-r1");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["created"], 1700000000);
  EXPECT_EQ(j["data"][0]["owned_by"], "wideserve");
  EXPECT_EQ(j["data"][0]["max_model_len"], 163840);
  EXPECT_FALSE(j["data"][1].contains("max_model_len"));
  EXPECT_EQ(parse(models_list({}))["data"], Json::array());
}

}  // namespace
}  // namespace wideserve::api
