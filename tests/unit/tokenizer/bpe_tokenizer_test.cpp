// Tokenizer core: known DeepSeek-V3 encodings (ids pasted from HF tokenizers 0.23), decode,
// config, small synthetic tokenizer.json files, error messages, and linear-time long inputs.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/check.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::tokenizer {
namespace {

const Tokenizer& deepseek() {
  static std::unique_ptr<Tokenizer> tok =
      Tokenizer::from_dir(std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3");
  return *tok;
}

using Ids = std::vector<int32_t>;

TEST(DeepSeekTokenizer, KnownEncodings) {
  const Tokenizer& t = deepseek();
  EXPECT_EQ(t.encode("Hello, world!", false), (Ids{19923, 14, 2058, 3}));
  EXPECT_EQ(t.encode("你好，世界！我们在测试。", false),
            (Ids{30594, 303, 3427, 1175, 19808, 10251, 320}));
  EXPECT_EQ(t.encode("12345678 and 3.14159", false),
            (Ids{6895, 18009, 2597, 305, 223, 21, 16, 9926, 3318}));
  EXPECT_EQ(t.encode("  leading spaces\r\n\ttab", false),
            (Ids{223, 6646, 13564, 204, 201, 200, 14278}));
  EXPECT_EQ(t.encode("<｜User｜>What is 2+2?<｜Assistant｜>", false),
            (Ids{128803, 3085, 344, 223, 20, 13, 20, 33, 128804}));
  EXPECT_EQ(t.encode("مرحبا بالعالم", false), (Ids{10393, 2212, 53067, 9254, 1183, 14059}));
  EXPECT_EQ(t.encode("👨\u200d👩\u200d👧\u200d👦 family", false),
            (Ids{25730, 104, 46088, 25730, 105, 46088, 25730, 103, 46088, 25730, 102, 3096}));
  EXPECT_EQ(t.encode("def f(x):\n    return x**2\n", false),
            (Ids{3465, 285, 4042, 3395, 361, 1354, 1527, 666, 20, 201}));
  EXPECT_EQ(t.encode("", false), Ids{});
  // The special-token string inside text is the special token.
  EXPECT_EQ(t.encode("<｜begin▁of▁sentence｜>a", false), (Ids{0, 67}));
}

TEST(DeepSeekTokenizer, AddSpecialTokensFollowsTokenizerJson) {
  // transformers v5 ignores add_bos_token when tokenizer.json exists; the ByteLevel
  // post-processor adds nothing, so both modes agree (the chat template writes the BOS).
  const Tokenizer& t = deepseek();
  EXPECT_EQ(t.encode("Hello world", true), t.encode("Hello world", false));
  EXPECT_TRUE(t.config().add_bos_token);
  EXPECT_EQ(t.config().bos_token, "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(t.config().eos_token, "<｜end▁of▁sentence｜>");
  EXPECT_FALSE(t.config().chat_template.empty());
}

TEST(DeepSeekTokenizer, DecodeAndVocab) {
  const Tokenizer& t = deepseek();
  Ids ids{0, 19923, 2058, 1};
  EXPECT_EQ(t.decode(ids, false), "<｜begin▁of▁sentence｜>Hello world<｜end▁of▁sentence｜>");
  EXPECT_EQ(t.decode(ids, true), "Hello world");
  // <｜User｜> is an added token but not special: kept by skip_special_tokens.
  EXPECT_EQ(t.decode(Ids{128803, 3085}, true), "<｜User｜>What");
  // A lone byte of a multi-byte character decodes to U+FFFD.
  EXPECT_EQ(t.decode(Ids{163}, false), "\xEF\xBF\xBD");
  EXPECT_EQ(t.vocab_size(), 128815);
  EXPECT_EQ(t.token_to_id("<｜User｜>"), 128803);
  EXPECT_EQ(t.id_to_token(19923), "Hello");
  EXPECT_TRUE(t.is_special(0));
  EXPECT_FALSE(t.is_special(128803));
  EXPECT_FALSE(t.id_to_token(-1).has_value());
  EXPECT_FALSE(t.id_to_token(10000000).has_value());
}

TEST(DeepSeekTokenizer, RejectsInvalidUtf8) {
  try {
    deepseek().encode("abc\xFF", false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos);
  }
}

double seconds_to_encode(const Tokenizer& t, const std::string& s) {
  auto t0 = std::chrono::steady_clock::now();
  auto ids = t.encode(s, false);
  EXPECT_FALSE(ids.empty());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string repeat(std::string_view unit, size_t bytes) {
  std::string s;
  while (s.size() + unit.size() <= bytes) s += unit;
  return s;
}

TEST(DeepSeekTokenizer, LongSingleCharacterInputsScaleLinearly) {
  // Each of these is one huge pre-tokenized word or one huge regex run; 4x the input must not
  // cost anywhere near 16x (quadratic). Loose bound: timing on a shared machine is noisy.
  const Tokenizer& t = deepseek();
  for (std::string_view unit : {"a", " ", "1", "你", "!", "\n", "é", "ab"}) {
    std::string small = repeat(unit, 256 * 1024), big = repeat(unit, 1024 * 1024);
    // Best of three each: other processes on the box only ever add time.
    double ts = 1e9, tb = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      ts = std::min(ts, seconds_to_encode(t, small));
      tb = std::min(tb, seconds_to_encode(t, big));
    }
    EXPECT_LT(tb, 5.0) << "unit '" << unit << "'";
    EXPECT_LT(tb, 10 * ts + 0.05) << "unit '" << unit << "' 256KB " << ts << "s, 1MB " << tb;
    EXPECT_EQ(t.decode(t.encode(big, false), false), big);
  }
}

// A tiny byte-level tokenizer: vocab of the 256 byte symbols plus a few merges.
std::string tiny_json(const std::string& extra_merges = "", const std::string& pre = "") {
  std::string vocab;
  std::string bytes[] = {"a", "b", "c", "Ġ", "ab", "bc", "abc", "Ġa"};
  for (int i = 0; i < 8; ++i)
    vocab += (i ? "," : "") + ("\"" + bytes[i] + "\":" + std::to_string(i));
  std::string pt =
      pre.empty() ? R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})" : pre;
  return R"({"version":"1.0","added_tokens":[{"id":8,"content":"<x>","special":true}],)"
         R"("normalizer":null,"pre_tokenizer":)" +
         pt + R"(,"post_processor":null,"decoder":{"type":"ByteLevel"},)" +
         R"("model":{"type":"BPE","vocab":{)" + vocab + R"(},"merges":[)" +
         (extra_merges.empty() ? R"("b c","a b","a bc","Ġ a")" : extra_merges) + "]}}";
}

TEST(TinyTokenizer, MergePriorityIsByRank) {
  auto t = Tokenizer::from_json(tiny_json(), "");
  // "b c" outranks "a b": abc -> a + bc -> abc.
  EXPECT_EQ(t->encode("abc", false), (Ids{6}));
  EXPECT_EQ(t->encode("abcab a<x>", false), (Ids{6, 4, 7, 8}));
  EXPECT_EQ(t->decode(Ids{6, 4, 7, 8}, true), "abcab a");
  // Pair-list merges format.
  auto t2 = Tokenizer::from_json(tiny_json(R"(["a","b"],["b","c"])"), "");
  EXPECT_EQ(t2->encode("abc", false), (Ids{4, 2}));
}

void expect_error(const std::string& json, ErrorCode code, const std::string& needle) {
  try {
    Tokenizer::from_json(json, "");
    FAIL() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TinyTokenizer, MalformedJsonErrorsNameTheProblem) {
  expect_error("{not json", ErrorCode::kDataLoss, "tokenizer.json is not valid JSON");
  expect_error(R"({"version":"1.0"})", ErrorCode::kDataLoss, "missing 'model'");
  expect_error(tiny_json(R"("a zz")"), ErrorCode::kDataLoss, "merge #0 'a zz'");
  expect_error(tiny_json(R"("abc")"), ErrorCode::kDataLoss, "merge #0");
  expect_error(tiny_json("", R"({"type":"Frobnicate"})"), ErrorCode::kUnimplemented,
               "unsupported pre_tokenizer type 'Frobnicate'");
  expect_error(tiny_json("", R"({"type":"Split","pattern":{"Regex":"(a"},"behavior":"Isolated"})"),
               ErrorCode::kDataLoss, "invalid regex '(a'");
  expect_error(tiny_json("", R"({"type":"Split","pattern":{"Regex":"a"},"behavior":"Sideways"})"),
               ErrorCode::kDataLoss, "unknown split behavior 'Sideways'");
  expect_error(R"({"model":{"type":"WordPiece","vocab":{}}})", ErrorCode::kUnimplemented,
               "only BPE");
  try {
    Tokenizer::from_dir("/nonexistent/dir");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json"), std::string::npos);
  }
}

TEST(TokenizerConfig, ChatTemplateListPicksDefault) {
  std::string cfg =
      R"({"bos_token":"<s>","add_bos_token":true,"chat_template":[{"name":"tool_use","template":"T"},{"name":"default","template":"D"}]})";
  auto t = Tokenizer::from_json(tiny_json(), cfg);
  EXPECT_EQ(t->config().chat_template, "D");
  EXPECT_EQ(t->config().bos_token, "<s>");
  EXPECT_TRUE(t->config().add_bos_token);
  EXPECT_FALSE(t->config().eos_token.has_value());
  auto t2 = Tokenizer::from_json(
      tiny_json(),
      R"({"chat_template":[{"name":"rag","template":"R"},{"name":"x","template":"X"}]})");
  EXPECT_EQ(t2->config().chat_template, "R");
}

}  // namespace
}  // namespace wideserve::tokenizer
