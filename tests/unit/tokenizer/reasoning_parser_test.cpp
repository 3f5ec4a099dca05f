#include "tokenizer/reasoning_parser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "common/check.h"

namespace wideserve::tokenizer {

void PrintTo(const ReasoningDelta& d, std::ostream* os) {
  *os << "{reasoning=\"" << d.reasoning_content << "\", content=\"" << d.content << "\"}";
}

namespace {

ReasoningDelta run(const std::vector<std::string_view>& chunks, const ReasoningOptions& options) {
  ReasoningParser p(options);
  ReasoningDelta all;
  for (std::string_view c : chunks) {
    ReasoningDelta d = p.push(c);
    all.reasoning_content += d.reasoning_content;
    all.content += d.content;
  }
  ReasoningDelta d = p.finish();
  all.reasoning_content += d.reasoning_content;
  all.content += d.content;
  return all;
}

ReasoningOptions r1() {
  return reasoning_options_for("deepseek_r1");
}
ReasoningOptions v3() {
  return reasoning_options_for("deepseek-v3");
}

// Every 1- and 2-cut chunking, and byte by byte, gives the whole-text result.
void check_all_splits(std::string_view text, const ReasoningOptions& options,
                      const ReasoningDelta& want) {
  EXPECT_EQ(ReasoningParser::parse(text, options), want) << text;
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      ASSERT_EQ(run({text.substr(0, i), text.substr(i, j - i), text.substr(j)}, options), want)
          << text << " cut " << i << "," << j;
    }
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  ASSERT_EQ(run(bytes, options), want) << text;
}

TEST(ReasoningParser, OpeningTagAbsent) {
  check_all_splits("Let me think.\nOK.</think>\n\nThe answer is 4.", r1(),
                   {"Let me think.\nOK.", "The answer is 4."});
}

TEST(ReasoningParser, OpeningTagPresent) {
  check_all_splits("<think>\nhmm 中文</think>\n\n答案", r1(), {"\nhmm 中文", "答案"});
}

TEST(ReasoningParser, NoClosingTagIsAllReasoning) {
  check_all_splits("<think>still thinking </thi", r1(), {"still thinking </thi", ""});
  check_all_splits("thinking without tags", r1(), {"thinking without tags", ""});
}

TEST(ReasoningParser, EmptyInputs) {
  check_all_splits("", r1(), {"", ""});
  check_all_splits("", v3(), {"", ""});
  check_all_splits("</think>", r1(), {"", ""});
  check_all_splits("<think></think>", r1(), {"", ""});
  check_all_splits("<think>", r1(), {"", ""});
}

TEST(ReasoningParser, SecondOpeningTagInsideReasoningIsText) {
  check_all_splits("<think>a<think>b</think>c</think>d", r1(), {"a<think>b", "c</think>d"});
}

TEST(ReasoningParser, NearMissesAreText) {
  check_all_splits("<thinking></thin></think>x", r1(), {"<thinking></thin>", "x"});
  check_all_splits("<thin", r1(), {"<thin", ""});
  check_all_splits("<<think>", r1(), {"<<think>", ""});
}

TEST(ReasoningParser, ExplicitTagRequiredWhenNotForced) {
  check_all_splits("Plain answer </think> stays", v3(), {"", "Plain answer </think> stays"});
  check_all_splits("<think>why</think>\nbecause", v3(), {"why", "because"});
  check_all_splits("<thi", v3(), {"", "<thi"});
  check_all_splits(" <think>x</think>", v3(), {"", " <think>x</think>"});
}

TEST(ReasoningParser, ContentWhitespaceStripOption) {
  ReasoningOptions keep = r1();
  keep.strip_content_leading_whitespace = false;
  check_all_splits("a</think>\n\n b", keep, {"a", "\n\n b"});
  check_all_splits("a</think>\n\n b \n", r1(), {"a", "b \n"});
  check_all_splits("a</think>  \n", r1(), {"a", ""});
}

TEST(ReasoningParser, TagSplitAcrossChunksStreamsEagerly) {
  ReasoningParser p(r1());
  EXPECT_EQ(p.push("<thi"), (ReasoningDelta{"", ""}));
  EXPECT_EQ(p.push("nk>abc"), (ReasoningDelta{"abc", ""}));
  EXPECT_TRUE(p.in_reasoning());
  EXPECT_EQ(p.push("def</th"), (ReasoningDelta{"def", ""}));
  EXPECT_EQ(p.push("ink>"), (ReasoningDelta{"", ""}));
  EXPECT_TRUE(p.reasoning_ended());
  EXPECT_FALSE(p.in_reasoning());
  EXPECT_EQ(p.push("\n"), (ReasoningDelta{"", ""}));
  EXPECT_EQ(p.push("\nHi"), (ReasoningDelta{"", "Hi"}));
  EXPECT_EQ(p.push(" </think>"), (ReasoningDelta{"", " </think>"}));
  EXPECT_EQ(p.finish(), (ReasoningDelta{"", ""}));
}

TEST(ReasoningParser, PartialTagReleasedWhenItDiverges) {
  ReasoningParser p(r1());
  EXPECT_EQ(p.push("x </"), (ReasoningDelta{"x ", ""}));
  EXPECT_EQ(p.push("b>"), (ReasoningDelta{"</b>", ""}));
}

TEST(ReasoningParser, UnknownParserName) {
  EXPECT_THROW(reasoning_options_for("nope"), Error);
  ReasoningOptions bad;
  bad.end_tag = "";
  EXPECT_THROW(ReasoningParser p(bad), Error);
}

const std::string kTools = "<｜tool▁calls▁begin｜>";

TEST(ReasoningParser, ToolCallsEndUnclosedReasoning) {
  check_all_splits("let me call a tool" + kTools + "x</think>y", r1(),
                   {"let me call a tool", kTools + "x</think>y"});
  check_all_splits("think</think>\n" + kTools + "x", r1(), {"think", kTools + "x"});
  ReasoningOptions off = r1();
  off.tool_calls_start = "";
  check_all_splits("a" + kTools + "b", off, {"a" + kTools + "b", ""});
  check_all_splits(kTools, v3(), {"", kTools});
}

// Reference for strip=false: reasoning and content are the input minus the tags.
ReasoningDelta reference(std::string_view text, bool force) {
  ReasoningDelta want;
  bool reasoning = force;
  if (text.starts_with("<think>")) {
    text.remove_prefix(7);
    reasoning = true;
  }
  if (!reasoning) {
    want.content = text;
    return want;
  }
  size_t end = text.find("</think>");
  size_t tools = text.find(kTools);
  if (tools != std::string_view::npos && tools < end) {
    want.reasoning_content = text.substr(0, tools);
    want.content = text.substr(tools);
  } else if (end == std::string_view::npos) {
    want.reasoning_content = text;
  } else {
    want.reasoning_content = text.substr(0, end);
    want.content = text.substr(end + 8);
  }
  return want;
}

TEST(ReasoningParser, RandomChunkingFuzz) {
  std::mt19937 rng(11);
  const std::string pieces[] = {"<think>", "</think>", "<",    "</",     "<th", "think",
                                ">",       "\n",       " ",    "a",      "中",  "😀",
                                "</thi",   "nk>",      kTools, "<｜tool"};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int iters = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ++iters;
    std::string text;
    size_t n = rng() % 16;
    for (size_t i = 0; i < n; ++i) text += pieces[rng() % std::size(pieces)];
    bool force = rng() % 2;
    ReasoningOptions options;
    options.force_reasoning = force;
    options.strip_content_leading_whitespace = false;
    std::vector<std::string_view> chunks;
    for (size_t i = 0; i < text.size();) {
      size_t k = std::min<size_t>(text.size() - i, rng() % 7);
      chunks.push_back(std::string_view(text).substr(i, k));
      i += k;
    }
    ReasoningDelta want = reference(text, force);
    ASSERT_EQ(run(chunks, options), want) << text;
    // With stripping on, streaming still equals the whole-text parse.
    options.strip_content_leading_whitespace = true;
    ASSERT_EQ(run(chunks, options), ReasoningParser::parse(text, options)) << text;
  }
  EXPECT_GT(iters, 1000);
}

}  // namespace
}  // namespace wideserve::tokenizer
