#include "tokenizer/tool_call_parser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace wideserve::tokenizer {
namespace {

const std::string kCallsBegin = "<｜tool▁calls▁begin｜>";
const std::string kCallsEnd = "<｜tool▁calls▁end｜>";
const std::string kCallBegin = "<｜tool▁call▁begin｜>";
const std::string kCallEnd = "<｜tool▁call▁end｜>";
const std::string kSep = "<｜tool▁sep｜>";

std::string v3_call(const std::string& name, const std::string& args) {
  return kCallBegin + "function" + kSep + name + "\n```json\n" + args + "\n```" + kCallEnd;
}
std::string v31_call(const std::string& name, const std::string& args) {
  return kCallBegin + name + kSep + args + kCallEnd;
}

struct Call {
  std::string name;
  std::string arguments;
  bool operator==(const Call&) const = default;
};
struct Parsed {
  std::string content;
  std::vector<Call> calls;
  bool operator==(const Parsed&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Parsed& p) {
  os << "{content=\"" << p.content << "\", calls=[";
  for (const Call& c : p.calls) os << "(" << c.name << ", " << c.arguments << ") ";
  return os << "]}";
}

Parsed strip_ids(const ToolParseResult& r) {
  Parsed p{r.content, {}};
  for (const ToolCall& c : r.tool_calls) p.calls.push_back({c.name, c.arguments});
  return p;
}

// Streams the chunks, checking the OpenAI delta shape as it goes.
ToolParseResult run(const std::vector<std::string_view>& chunks, uint64_t seed = 42) {
  ToolCallParser parser(ToolParserOptions{seed});
  ToolParseResult result;
  std::set<int> started;
  auto take = [&](const ToolParseDelta& d) {
    for (const ToolCallDelta& t : d.tool_calls) {
      bool first = !started.count(t.index);
      EXPECT_EQ(t.id.has_value(), first);
      EXPECT_EQ(t.name.has_value(), first);
      EXPECT_EQ(t.type.has_value(), first);
      if (first) {
        EXPECT_EQ(t.index, static_cast<int>(started.size()));
        EXPECT_EQ(t.id->rfind("call_", 0), 0u);
        EXPECT_EQ(*t.type, "function");
        started.insert(t.index);
      }
    }
    accumulate(result, d);
  };
  for (std::string_view c : chunks) take(parser.push(c));
  take(parser.finish());
  return result;
}

void expect_tags_absent(const ToolParseResult& r) {
  for (const std::string* m : {&kCallsBegin, &kCallsEnd, &kCallBegin, &kCallEnd, &kSep}) {
    EXPECT_EQ(r.content.find(*m), std::string::npos) << r.content;
    for (const ToolCall& c : r.tool_calls) {
      EXPECT_EQ(c.name.find(*m), std::string::npos);
      EXPECT_EQ(c.arguments.find(*m), std::string::npos);
    }
  }
}

void check_all_splits(std::string_view text, const Parsed& want) {
  ToolParseResult whole = ToolCallParser::parse(text, ToolParserOptions{42});
  EXPECT_EQ(strip_ids(whole), want) << text;
  expect_tags_absent(whole);
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      ToolParseResult r = run({text.substr(0, i), text.substr(i, j - i), text.substr(j)});
      ASSERT_EQ(strip_ids(r), want) << text << " cut " << i << "," << j;
      for (size_t k = 0; k < r.tool_calls.size(); ++k) {
        ASSERT_EQ(r.tool_calls[k].id, whole.tool_calls[k].id);
      }
    }
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  ASSERT_EQ(strip_ids(run(bytes)), want) << text;
}

TEST(ToolCallParser, PlainContent) {
  check_all_splits("Just text, with <b> tags and <｜User｜> and a lone <",
                   {"Just text, with <b> tags and <｜User｜> and a lone <", {}});
  check_all_splits("", {"", {}});
}

TEST(ToolCallParser, V3SingleCall) {
  std::string text =
      "Let me check.\n" + kCallsBegin + v3_call("get_weather", R"({"city": "Paris"})") + kCallsEnd;
  check_all_splits(text, {"Let me check.\n", {{"get_weather", R"({"city": "Paris"})"}}});
}

TEST(ToolCallParser, V3TwoCallsAsTheTemplateRendersThem) {
  std::string text = kCallsBegin + v3_call("a", R"({"x": 1})") + "\n" +
                     v3_call("b_2", R"({"s": "中文 😀 ```py\nx\n```"})") + kCallsEnd;
  check_all_splits(text, {"", {{"a", R"({"x": 1})"}, {"b_2", R"({"s": "中文 😀 ```py\nx\n```"})"}}});
}

TEST(ToolCallParser, V31Calls) {
  std::string text = "好的" + kCallsBegin + v31_call("get_weather", R"({"city":"北京"})") +
                     v31_call("now", "{}") + kCallsEnd;
  check_all_splits(text, {"好的", {{"get_weather", R"({"city":"北京"})"}, {"now", "{}"}}});
}

TEST(ToolCallParser, MissingOuterMarkers) {
  check_all_splits(v3_call("f", R"({"a":[1,2]})"), {"", {{"f", R"({"a":[1,2]})"}}});
  check_all_splits(kCallsBegin + v31_call("f", "[1]"), {"", {{"f", "[1]"}}});
}

TEST(ToolCallParser, ContentAfterCalls) {
  check_all_splits(kCallsBegin + v31_call("f", "{}") + kCallsEnd + " done",
                   {" done", {{"f", "{}"}}});
  // Inside the section, layout whitespace between calls is dropped, other text is content.
  check_all_splits(kCallsBegin + "\n " + v31_call("f", "{}") + " note " + v31_call("g", "{}"),
                   {" note ", {{"f", "{}"}, {"g", "{}"}}});
}

TEST(ToolCallParser, EmptyArgumentsBecomeEmptyObject) {
  check_all_splits(v31_call("f", ""), {"", {{"f", "{}"}}});
  check_all_splits(kCallBegin + "function" + kSep + "ping\n```json\n\n```" + kCallEnd,
                   {"", {{"ping", "{}"}}});
  check_all_splits(kCallBegin + "function" + kSep + "ping" + kCallEnd, {"", {{"ping", "{}"}}});
}

TEST(ToolCallParser, TruncatedArgumentsStillReported) {
  check_all_splits(kCallsBegin + kCallBegin + "function" + kSep + "f\n```json\n{\"a\": 1",
                   {"", {{"f", "{\"a\": 1"}}});
  check_all_splits(kCallBegin + "f" + kSep + "{\"a\": \"x``", {"", {{"f", "{\"a\": \"x``"}}});
}

TEST(ToolCallParser, MalformedDegradesToContent) {
  // No separator.
  check_all_splits("pre " + kCallBegin + "function" + kCallEnd + " post",
                   {"pre function post", {}});
  // Cut off before the name is known.
  check_all_splits(kCallBegin + "function" + kSep + "get_wea", {"functionget_wea", {}});
  check_all_splits(kCallBegin + "func", {"func", {}});
  // Empty name before JSON.
  check_all_splits(kCallBegin + kSep + "{\"a\":1}" + kCallEnd, {"{\"a\":1}", {}});
  // Stray markers vanish; a partial marker at the end is text.
  check_all_splits("a" + kCallEnd + "b" + kSep + "c<｜tool▁ca", {"abc<｜tool▁ca", {}});
  // A call begin interrupting a call head.
  check_all_splits(kCallBegin + "junk" + v31_call("f", "{}"), {"junk", {{"f", "{}"}}});
}

TEST(ToolCallParser, OverlongHeadIsContent) {
  std::string head(300, 'x');
  ToolParseResult r = ToolCallParser::parse(kCallBegin + head + kSep + "{}" + kCallEnd);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, head + "{}");
}

TEST(ToolCallParser, StreamingDeltaShape) {
  ToolCallParser p(ToolParserOptions{1});
  ToolParseDelta d = p.push("Sure." + kCallsBegin.substr(0, 5));
  EXPECT_EQ(d.content, "Sure.");
  EXPECT_TRUE(d.tool_calls.empty());
  d = p.push(kCallsBegin.substr(5) + kCallBegin + "function" + kSep + "get_weather\n```js");
  EXPECT_TRUE(d.content.empty());
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].index, 0);
  EXPECT_EQ(d.tool_calls[0].name, "get_weather");
  EXPECT_TRUE(d.tool_calls[0].id.has_value());
  EXPECT_EQ(d.tool_calls[0].arguments, "");
  d = p.push("on\n{\"city\": ");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_FALSE(d.tool_calls[0].name.has_value());
  EXPECT_EQ(d.tool_calls[0].arguments, "{\"city\":");  // trailing space held back
  d = p.push("\"Paris\"}\n``");
  EXPECT_EQ(d.tool_calls[0].arguments, " \"Paris\"}");
  d = p.push("`" + kCallEnd + "\n" + kCallBegin + "function" + kSep + "f2\n");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].index, 1);
  EXPECT_EQ(d.tool_calls[0].name, "f2");
  d = p.finish();
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, "{}");
  EXPECT_EQ(p.num_tool_calls(), 2);
}

TEST(ToolCallParser, IdsAreUniqueAndSeeded) {
  std::string text = v31_call("a", "{}") + v31_call("b", "{}");
  ToolParseResult r1 = ToolCallParser::parse(text, ToolParserOptions{5});
  ToolParseResult r2 = ToolCallParser::parse(text, ToolParserOptions{5});
  ASSERT_EQ(r1.tool_calls.size(), 2u);
  EXPECT_EQ(r1.tool_calls[0].id, r2.tool_calls[0].id);
  EXPECT_NE(r1.tool_calls[0].id, r1.tool_calls[1].id);
  EXPECT_EQ(r1.tool_calls[0].id.size(), 29u);
  ToolParseResult r3 = ToolCallParser::parse(text);  // random seed
  EXPECT_EQ(r3.tool_calls.size(), 2u);
}

// Long arguments with long whitespace runs, one byte per push, stay fast and exact.
TEST(ToolCallParser, LongArgumentsStreamLinearly) {
  std::string args = "{\"text\": \"";
  for (int i = 0; i < 2000; ++i) args += "word" + std::string(50, ' ') + "```";
  args += "\"}";
  std::string text = kCallsBegin + v3_call("echo", args) + kCallsEnd;
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(std::string_view(text).substr(i, 1));
  auto start = std::chrono::steady_clock::now();
  ToolParseResult r = run(bytes);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(strip_ids(r), (Parsed{"", {{"echo", args}}}));
}

std::vector<std::string_view> random_chunks(std::string_view text, std::mt19937& rng) {
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < text.size();) {
    size_t k = std::min<size_t>(text.size() - i, rng() % 12);
    chunks.push_back(text.substr(i, k));
    i += k;
  }
  return chunks;
}

// Well-formed outputs round-trip: content and calls come back exactly, in any chunking.
TEST(ToolCallParser, GeneratedCallsRoundTrip) {
  std::mt19937 rng(3);
  const std::string text_pieces[] = {"a", "Z", " ", "\n", "<", ">", "中", "😀", "`", "é", "<｜"};
  const std::string arg_pieces[] = {"\"k\": ", "1",      ",",   " ", "\n", "[",   "]",
                                    "{}",      "\"中\"", "```", "`", "<",  "\\n", "true"};
  auto rand_from = [&](const auto& pieces, size_t max) {
    std::string s;
    size_t n = rng() % (max + 1);
    for (size_t i = 0; i < n; ++i) s += pieces[rng() % std::size(pieces)];
    return s;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int iters = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ++iters;
    Parsed want;
    want.content = rand_from(text_pieces, 8);
    if (want.content.ends_with("<｜")) want.content += "x";  // keep the content marker-free
    std::string text = want.content;
    size_t n = rng() % 4;
    bool outer = n > 0 && rng() % 4 != 0;
    if (outer) text += kCallsBegin;
    for (size_t i = 0; i < n; ++i) {
      std::string name = "fn_" + std::to_string(rng() % 1000);
      std::string args = "{" + rand_from(arg_pieces, 10) + "}";
      text += (rng() % 2) ? v3_call(name, args) : v31_call(name, args);
      if (rng() % 2) text += "\n";
      want.calls.push_back({name, args});
    }
    if (outer) text += kCallsEnd;
    for (int rep = 0; rep < 3; ++rep) {
      ASSERT_EQ(strip_ids(run(random_chunks(text, rng))), want) << text;
    }
  }
  EXPECT_GT(iters, 500);
}

// Random soup of markers, fragments and text: no crash or hang, chunking never changes the
// result, markers never leak, and text without '<' is content verbatim.
TEST(ToolCallParser, RandomSoupFuzz) {
  std::mt19937 rng(9);
  const std::string pieces[] = {kCallsBegin, kCallsEnd, kCallBegin, kCallEnd,   kSep,
                                "<｜tool▁",  "<｜",     "<",        "function", "f",
                                "\n",        " ",       "```json",  "```",      "{",
                                "}",         "[",       "\"a\":1",  "中",       "`"};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int iters = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ++iters;
    std::string text;
    size_t n = rng() % 20;
    for (size_t i = 0; i < n; ++i) text += pieces[rng() % std::size(pieces)];
    ToolParseResult whole = ToolCallParser::parse(text, ToolParserOptions{42});
    expect_tags_absent(whole);
    for (const ToolCall& c : whole.tool_calls) ASSERT_FALSE(c.name.empty());
    if (text.find('<') == std::string::npos) {
      ASSERT_EQ(whole.content, text);
      ASSERT_TRUE(whole.tool_calls.empty());
    }
    ToolParseResult streamed = run(random_chunks(text, rng));
    ASSERT_EQ(strip_ids(streamed), strip_ids(whole)) << text;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(iters, 1000);
}

}  // namespace
}  // namespace wideserve::tokenizer
