#include "loadgen/dataset.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "common/check.h"
#include "loadgen/request_body.h"

namespace wideserve::loadgen {
namespace {

int64_t word_count(std::string_view s) {
  std::istringstream in{std::string(s)};
  std::string w;
  int64_t n = 0;
  while (in >> w) ++n;
  return n;
}

std::string temp_file(const std::string& name, const std::string& content) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

TEST(Dataset, RandomLengthRange) {
  std::mt19937_64 rng(1);
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    int64_t n = random_length(10, 0.5, rng);
    ASSERT_GE(n, 5);
    ASSERT_LE(n, 10);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 6u);  // every length in [5, 10] occurs
  EXPECT_EQ(random_length(10, 1.0, rng), 10);
  EXPECT_GE(random_length(3, 0.0, rng), 1);
  EXPECT_THROW(random_length(10, 1.5, rng), Error);
}

TEST(Dataset, RandomTokenIdsAreExact) {
  RandomDatasetConfig c;
  c.num_prompts = 50;
  c.input_len = 100;
  c.output_len = 20;
  c.range_ratio = 0.5;
  c.token_ids = true;
  c.id_low = 10;
  c.id_high = 20;
  c.seed = 7;
  auto ps = make_random_prompts(c, nullptr);
  ASSERT_EQ(ps.size(), 50u);
  for (const auto& p : ps) {
    EXPECT_EQ(static_cast<int64_t>(p.token_ids.size()), p.input_tokens);
    EXPECT_GE(p.input_tokens, 50);
    EXPECT_LE(p.input_tokens, 100);
    EXPECT_GE(p.output_tokens, 10);
    EXPECT_LE(p.output_tokens, 20);
    for (int32_t id : p.token_ids) ASSERT_TRUE(id >= 10 && id < 20);
  }
  auto again = make_random_prompts(c, nullptr);
  EXPECT_EQ(again[3].token_ids, ps[3].token_ids);  // seeded
}

TEST(Dataset, RandomTextWithAndWithoutCounter) {
  RandomDatasetConfig c;
  c.num_prompts = 5;
  c.input_len = 64;
  auto ps = make_random_prompts(c, nullptr);
  for (const auto& p : ps) {
    EXPECT_TRUE(p.token_ids.empty());
    EXPECT_EQ(word_count(p.text), 64);
  }
  // A counter where every word is two tokens: the text is corrected to the exact count.
  TokenCounter twice = [](std::string_view s) { return 2 * word_count(s); };
  std::mt19937_64 rng(5);
  EXPECT_EQ(twice(random_text(64, rng, twice)), 64);
  EXPECT_EQ(twice(random_text(63, rng, twice)), 62);  // unreachable: closest from below
}

TEST(Dataset, ShareGptJsonAndJsonLines) {
  std::string json = R"([
    {"id": "a", "conversations": [{"from": "human", "value": "What is the capital of France?"},
                                  {"from": "gpt", "value": "Paris is the capital of France, of course."}]},
    {"id": "b", "conversations": [{"from": "human", "value": "Hi"}]},
    {"id": "c", "conversation": [{"role": "user", "content": "Tell me a long story about dragons"},
                                 {"role": "assistant", "content": "Once upon a time there was a dragon."}]},
    {"id": "d", "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "short"}]}
  ])";
  ShareGptConfig c;
  c.path = temp_file("sharegpt.json", json);
  TokenCounter words = [](std::string_view s) { return word_count(s); };
  auto ps = load_sharegpt(c, words);
  ASSERT_EQ(ps.size(), 2u);  // b has no reply, d's prompt is 1 token
  std::set<std::string> texts;
  for (const auto& p : ps) {
    texts.insert(p.text);
    EXPECT_EQ(p.input_tokens, word_count(p.text));
  }
  EXPECT_TRUE(texts.count("What is the capital of France?"));
  for (const auto& p : ps)
    if (p.text[0] == 'W') EXPECT_EQ(p.output_tokens, 8);
  c.fixed_output_len = 33;
  c.num_prompts = 1;
  auto one = load_sharegpt(c, nullptr);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].output_tokens, 33);

  std::string jsonl =
      R"({"conversations": [{"from": "human", "value": "one two three"}, {"from": "gpt", "value": "four five six seven"}]})"
      "\n\n";
  c = ShareGptConfig{};
  c.path = temp_file("sharegpt.jsonl", jsonl);
  auto l = load_sharegpt(c, words);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].input_tokens, 3);
  EXPECT_EQ(l[0].output_tokens, 4);

  c.path = temp_file("bad.json", "[{\"conversations\": []}]");
  EXPECT_THROW(load_sharegpt(c, nullptr), Error);
  c.path = ::testing::TempDir() + "/does-not-exist.json";
  EXPECT_THROW(load_sharegpt(c, nullptr), Error);
}

TEST(Dataset, PrefixSharing) {
  PrefixDatasetConfig c;
  c.num_groups = 3;
  c.users_per_group = 4;
  c.system_len = 50;
  c.question_len = 10;
  c.output_len = 7;
  auto ps = make_prefix_prompts(c, nullptr);
  ASSERT_EQ(ps.size(), 12u);
  std::map<std::string, int> groups;
  std::set<std::string> questions;
  for (const auto& p : ps) {
    ++groups[p.system];
    questions.insert(p.text);
    EXPECT_EQ(word_count(p.system), 50);
    EXPECT_EQ(word_count(p.text), 10);
    EXPECT_EQ(p.output_tokens, 7);
  }
  EXPECT_EQ(groups.size(), 3u);
  for (const auto& [s, n] : groups) EXPECT_EQ(n, 4);
  EXPECT_EQ(questions.size(), 12u);

  c.token_ids = true;
  auto ids = make_prefix_prompts(c, nullptr);
  std::map<std::vector<int32_t>, int> id_groups;
  for (const auto& p : ids) {
    ASSERT_EQ(p.token_ids.size(), 60u);
    ++id_groups[std::vector<int32_t>(p.token_ids.begin(), p.token_ids.begin() + 50)];
  }
  EXPECT_EQ(id_groups.size(), 3u);
}

TEST(RequestBody, ChatAndCompletions) {
  Prompt p;
  p.system = "You are terse.";
  p.text = "hello";
  p.output_tokens = 9;
  RequestOptions o;
  o.model = "m";
  auto chat = nlohmann::json::parse(build_request_body(p, o));
  EXPECT_EQ(chat["model"], "m");
  EXPECT_EQ(chat["messages"].size(), 2u);
  EXPECT_EQ(chat["messages"][0]["role"], "system");
  EXPECT_EQ(chat["messages"][1]["content"], "hello");
  EXPECT_EQ(chat["max_tokens"], 9);
  EXPECT_EQ(chat["ignore_eos"], true);
  EXPECT_EQ(chat["stream"], true);
  EXPECT_EQ(chat["stream_options"]["include_usage"], true);
  o.endpoint = Endpoint::kCompletions;
  o.ignore_eos = false;
  o.extra_body = {{"temperature", 0}, {"stream_options", {{"continuous_usage_stats", true}}}};
  auto comp = nlohmann::json::parse(build_request_body(p, o));
  EXPECT_EQ(comp["prompt"], "You are terse.\n\nhello");
  EXPECT_FALSE(comp.contains("ignore_eos"));
  EXPECT_EQ(comp["temperature"], 0);
  EXPECT_EQ(comp["stream_options"]["include_usage"], true);
  EXPECT_EQ(comp["stream_options"]["continuous_usage_stats"], true);
  p.token_ids = {1, 2, 3};
  EXPECT_EQ(nlohmann::json::parse(build_request_body(p, o))["prompt"], nlohmann::json({1, 2, 3}));
  o.endpoint = Endpoint::kChat;
  EXPECT_THROW(build_request_body(p, o), Error);
}

TEST(RequestBody, Urls) {
  auto t = parse_http_url("http://example.com:8000");
  EXPECT_EQ(t.host, "example.com");
  EXPECT_EQ(t.port, "8000");
  EXPECT_EQ(t.base_path, "");
  t = parse_http_url("http://10.0.0.1/proxy/v1/");
  EXPECT_EQ(t.port, "80");
  EXPECT_EQ(t.base_path, "/proxy");
  t = parse_http_url("http://[::1]:9000/");
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, "9000");
  EXPECT_THROW(parse_http_url("https://x"), Error);
  EXPECT_THROW(parse_http_url("http://x:abc"), Error);
  EXPECT_THROW(parse_http_url("http://:80"), Error);
  EXPECT_EQ(endpoint_path(Endpoint::kCompletions), "/v1/completions");
}

}  // namespace
}  // namespace wideserve::loadgen
