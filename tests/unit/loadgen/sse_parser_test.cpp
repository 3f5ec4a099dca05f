#include "loadgen/sse_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "loadgen/openai_stream.h"

namespace wideserve::loadgen {
namespace {

struct Got {
  std::string event, data;
  bool operator==(const Got&) const = default;
};

std::vector<Got> parse_pieces(const std::vector<std::string>& pieces) {
  SseParser p;
  std::vector<Got> out;
  for (const auto& piece : pieces)
    p.feed(piece, [&](const SseEvent& e) {
      out.push_back({std::string(e.event), std::string(e.data)});
    });
  return out;
}

const std::string kStream =
    ": keep-alive comment\r\n"
    "data: {\"a\":1}\r\n\r\n"
    "event: error\n"
    "data: first\n"
    "data:second\n"
    "id: 7\n"
    "retry: 100\n"
    "\n"
    "data\r\r"
    "event: ignored-without-data\n\n"
    "data: [DONE]\n\n"
    "data: unterminated";

const std::vector<Got> kWant = {
    {"", "{\"a\":1}"}, {"error", "first\nsecond"}, {"", ""}, {"", "[DONE]"}};

TEST(SseParser, WholeStream) {
  EXPECT_EQ(parse_pieces({kStream}), kWant);
}

TEST(SseParser, EverySplitPointAndByteByByte) {
  for (size_t i = 0; i <= kStream.size(); ++i)
    for (size_t j = i; j <= kStream.size(); j += 7)
      ASSERT_EQ(parse_pieces({kStream.substr(0, i), kStream.substr(i, j - i), kStream.substr(j)}),
                kWant)
          << i << " " << j;
  std::vector<std::string> bytes;
  for (char c : kStream) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_pieces(bytes), kWant);
}

TEST(SseParser, RandomSplitsOfManyEvents) {
  std::string s;
  std::vector<Got> want;
  for (int i = 0; i < 200; ++i) {
    std::string d = "{\"choices\":[{\"delta\":{\"content\":\"tok" + std::to_string(i) + "\"}}]}";
    const char* eol = i % 3 == 0 ? "\r\n" : i % 3 == 1 ? "\n" : "\r";
    s += std::string("data: ") + d + eol + eol;
    want.push_back({"", d});
  }
  std::mt19937 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::string> pieces;
    for (size_t i = 0; i < s.size();) {
      size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
      pieces.push_back(s.substr(i, n));
      i += n;
    }
    ASSERT_EQ(parse_pieces(pieces), want);
  }
}

TEST(SseParser, PartialState) {
  SseParser p;
  auto ignore = [](const SseEvent&) {};
  EXPECT_FALSE(p.has_partial());
  p.feed("data: x", ignore);
  EXPECT_TRUE(p.has_partial());
  p.feed("\n", ignore);
  EXPECT_TRUE(p.has_partial());  // data buffered, event not dispatched
  p.feed("\n", ignore);
  EXPECT_FALSE(p.has_partial());
}

TEST(OpenAiStream, ChatContentUsageDone) {
  OpenAiStreamDecoder d(Endpoint::kChat);
  EXPECT_FALSE(d.on_data(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})"));
  EXPECT_TRUE(d.on_data(R"({"choices":[{"index":0,"delta":{"content":"Hi"}}]})"));
  EXPECT_TRUE(d.on_data(R"({"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]})"));
  EXPECT_FALSE(d.on_data(R"({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})"));
  EXPECT_FALSE(d.has_usage());
  EXPECT_FALSE(d.on_data(
      R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})"));
  EXPECT_TRUE(d.has_usage());
  EXPECT_EQ(d.prompt_tokens(), 12);
  EXPECT_EQ(d.completion_tokens(), 3);
  EXPECT_FALSE(d.done());
  d.on_data("[DONE]");
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.error_kind(), "");
}

TEST(OpenAiStream, CompletionsTextAndNullUsage) {
  OpenAiStreamDecoder d(Endpoint::kCompletions);
  EXPECT_TRUE(d.on_data(R"({"choices":[{"index":0,"text":" the"}],"usage":null})"));
  EXPECT_FALSE(d.on_data(R"({"choices":[{"index":0,"text":""}]})"));
  // A chat-shaped chunk is not completions content.
  EXPECT_FALSE(d.on_data(R"({"choices":[{"index":0,"delta":{"content":"x"}}]})"));
  EXPECT_FALSE(d.has_usage());
}

TEST(OpenAiStream, Errors) {
  OpenAiStreamDecoder a(Endpoint::kChat);
  a.on_data(R"({"error":{"message":"engine died","code":500}})");
  EXPECT_EQ(a.error_kind(), "stream_error");
  EXPECT_EQ(a.error_message(), "engine died");
  EXPECT_FALSE(a.on_data(R"({"choices":[{"delta":{"content":"late"}}]})"));
  OpenAiStreamDecoder b(Endpoint::kChat);
  b.on_data("{not json");
  EXPECT_EQ(b.error_kind(), "bad_response");
  OpenAiStreamDecoder c(Endpoint::kChat);
  EXPECT_FALSE(c.on_data(R"({"error":null,"choices":[]})"));
  EXPECT_EQ(c.error_kind(), "");
}

}  // namespace
}  // namespace wideserve::loadgen
