#include "tokenizer/detokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/check.h"
#include "tokenizer/reasoning_parser.h"
#include "tokenizer/stop_matcher.h"
#include "tokenizer/tool_call_parser.h"

namespace wideserve::tokenizer {
namespace {

// Lossy UTF-8 -> UTF-8: each maximal invalid subpart becomes U+FFFD (as Rust from_utf8_lossy).
std::string lossy_utf8(std::string_view in) {
  std::string out;
  size_t i = 0;
  auto cont = [&](size_t j) {
    return j < in.size() && (static_cast<unsigned char>(in[j]) & 0xC0) == 0x80;
  };
  while (i < in.size()) {
    unsigned char c = in[i];
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    size_t j = i + 1;
    size_t got = 0;
    while (got < need && cont(j)) {
      unsigned char b = in[j];
      if (got == 0 && (b < lo || b > hi)) break;
      ++j;
      ++got;
    }
    if (got == need) {
      out.append(in.substr(i, j - i));
    } else {
      out += "\xEF\xBF\xBD";
    }
    i = j;
  }
  return out;
}

// Ids map to byte strings; some are specials. With metaspace, "▁" means a space and the decoder
// strips one leading space of its whole output (SentencePiece/Llama style).
class FakeTokenizer : public Tokenizer {
 public:
  explicit FakeTokenizer(bool metaspace) : metaspace_(metaspace) {
    add("Hello");
    add(" world");
    add("!");
    add("\xE4\xB8\xAD");    // 中
    add("\xE4");            // first byte of 中/丁
    add("\xB8");            // middle byte
    add("\xAD");            // last byte of 中
    add("\xF0\x9F");        // half an emoji
    add("\x98\x80");        // its other half (😀)
    add("\xE2\x80\x8D");    // zero width joiner
    add("\x80");            // lone continuation byte: never valid
    add("\xEF\xBF\xBD");    // a real U+FFFD
    add("\xE2\x96\x81Hi");  // ▁Hi
    add("\xE2\x96\x81");    // ▁
    add("a");
    add(" ");
    add("\xC3");  // half of é
    add("\xA9");  // other half
    add("<s>", true);
    add("</s>", true);
    add("\xE2\x96\x81\xE4");  // ▁ + first byte of a CJK char
  }
  int32_t add(std::string bytes, bool special = false) {
    tokens_.push_back({std::move(bytes), special});
    return static_cast<int32_t>(tokens_.size() - 1);
  }
  std::vector<int32_t> encode(std::string_view, bool) const override { return {}; }
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string bytes;
    for (int32_t id : ids) {
      WS_CHECK_ARG(id >= 0 && id < vocab_size(), "bad id {}", id);
      const Entry& e = tokens_[id];
      if (e.special && skip_special_tokens) continue;
      bytes += e.bytes;
    }
    if (metaspace_) {
      std::string replaced;
      for (size_t i = 0; i < bytes.size();) {
        if (bytes.compare(i, 3, "\xE2\x96\x81") == 0) {
          replaced.push_back(' ');
          i += 3;
        } else {
          replaced.push_back(bytes[i++]);
        }
      }
      if (!replaced.empty() && replaced[0] == ' ') replaced.erase(0, 1);
      bytes = replaced;
    }
    return lossy_utf8(bytes);
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::optional<std::string> id_to_token(int32_t id) const override { return tokens_[id].bytes; }
  bool is_special(int32_t id) const override { return tokens_[id].special; }
  const TokenizerConfig& config() const override { return config_; }

 private:
  struct Entry {
    std::string bytes;
    bool special;
  };
  bool metaspace_;
  std::vector<Entry> tokens_;
  TokenizerConfig config_;
};

struct StreamOut {
  std::vector<std::string> chunks;
  std::string finish;
  std::string all() const {
    std::string s;
    for (const auto& c : chunks) s += c;
    return s + finish;
  }
};

StreamOut stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip,
                 std::mt19937* batch_rng = nullptr) {
  IncrementalDetokenizer detok(tok, skip);
  StreamOut out;
  for (size_t i = 0; i < ids.size();) {
    size_t n = batch_rng ? 1 + (*batch_rng)() % 3 : 1;
    n = std::min(n, ids.size() - i);
    out.chunks.push_back(detok.step(std::span<const int32_t>(ids.data() + i, n)));
    i += n;
  }
  out.finish = detok.finish();
  return out;
}

TEST(LossyUtf8, Basics) {
  EXPECT_EQ(lossy_utf8("abc"), "abc");
  EXPECT_EQ(lossy_utf8("\xE4\xB8"), "\xEF\xBF\xBD");
  EXPECT_EQ(lossy_utf8("\xE4\xB8"
                       "a"),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(lossy_utf8("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(lossy_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
}

TEST(Detokenizer, SimpleWords) {
  FakeTokenizer tok(false);
  StreamOut out = stream(tok, {0, 1, 2}, true);
  ASSERT_EQ(out.chunks.size(), 3u);
  EXPECT_EQ(out.chunks[0], "Hello");
  EXPECT_EQ(out.chunks[1], " world");
  EXPECT_EQ(out.chunks[2], "!");
  EXPECT_EQ(out.finish, "");
}

TEST(Detokenizer, ByteTokensHeldUntilCharacterCompletes) {
  FakeTokenizer tok(false);
  // 中 as three byte tokens, then an emoji as two halves.
  StreamOut out = stream(tok, {4, 5, 6, 7, 8}, true);
  ASSERT_EQ(out.chunks.size(), 5u);
  EXPECT_EQ(out.chunks[0], "");
  EXPECT_EQ(out.chunks[1], "");
  EXPECT_EQ(out.chunks[2], "\xE4\xB8\xAD");
  EXPECT_EQ(out.chunks[3], "");
  EXPECT_EQ(out.chunks[4], "\xF0\x9F\x98\x80");
  EXPECT_EQ(out.finish, "");
}

TEST(Detokenizer, TrailingIncompleteSequenceFlushedAtFinish) {
  FakeTokenizer tok(false);
  StreamOut out = stream(tok, {0, 4, 5}, true);
  EXPECT_EQ(out.chunks[0], "Hello");
  EXPECT_EQ(out.chunks[1], "");
  EXPECT_EQ(out.chunks[2], "");
  EXPECT_EQ(out.finish, "\xEF\xBF\xBD");
  EXPECT_EQ(out.all(), tok.decode(std::vector<int32_t>{0, 4, 5}, true));
}

TEST(Detokenizer, InterruptedSequenceComesOutAsReplacement) {
  FakeTokenizer tok(false);
  // 0xE4 then "a": the E4 can never complete, so "\uFFFDa" is emitted with the "a".
  StreamOut out = stream(tok, {4, 14}, true);
  EXPECT_EQ(out.chunks[0], "");
  EXPECT_EQ(out.chunks[1],
            "\xEF\xBF\xBD"
            "a");
}

TEST(Detokenizer, SkipSpecialTokens) {
  FakeTokenizer tok(false);
  EXPECT_EQ(stream(tok, {18, 0, 19, 1}, true).all(), "Hello world");
  EXPECT_EQ(stream(tok, {18, 0, 19, 1}, false).all(), "<s>Hello</s> world");
  StreamOut out = stream(tok, {0, 19}, true);
  EXPECT_EQ(out.chunks[1], "");
}

TEST(Detokenizer, MetaspaceLeadingSpace) {
  FakeTokenizer tok(true);
  // "▁Hi" first: the decoder strips the space of the very first token only.
  StreamOut out = stream(tok, {12, 12, 13, 12}, true);
  EXPECT_EQ(out.chunks[0], "Hi");
  EXPECT_EQ(out.chunks[1], " Hi");
  EXPECT_EQ(out.chunks[2], " ");
  EXPECT_EQ(out.chunks[3], " Hi");
  EXPECT_EQ(out.all(), "Hi Hi  Hi");
  // A skipped special token between words must not eat the next word's space.
  out = stream(tok, {12, 19, 12}, true);
  EXPECT_EQ(out.all(), "Hi Hi");
  EXPECT_EQ(out.chunks[2], " Hi");
  // Special first: its space-stripping moves to the first real token, as in a full decode.
  EXPECT_EQ(stream(tok, {18, 12, 12}, true).all(),
            tok.decode(std::vector<int32_t>{18, 12, 12}, true));
}

TEST(Detokenizer, RealReplacementCharIsHeldOneStepOnly) {
  FakeTokenizer tok(false);
  StreamOut out = stream(tok, {11, 14}, true);
  EXPECT_EQ(out.chunks[0], "");  // indistinguishable from an incomplete tail yet
  EXPECT_EQ(out.chunks[1],
            "\xEF\xBF\xBD"
            "a");
}

TEST(Detokenizer, StepAfterFinishThrows) {
  FakeTokenizer tok(false);
  IncrementalDetokenizer detok(tok, true);
  detok.step(0);
  detok.finish();
  EXPECT_THROW(detok.step(1), Error);
  EXPECT_THROW(detok.finish(), Error);
}

TEST(Detokenizer, BadIdThrows) {
  FakeTokenizer tok(false);
  IncrementalDetokenizer detok(tok, true);
  EXPECT_EQ(detok.step(0), "Hello");
  EXPECT_THROW(detok.step(1000), Error);
  EXPECT_THROW(detok.step(-1), Error);
  EXPECT_EQ(detok.step(1), " world");  // the rejected ids were not added
  EXPECT_EQ(detok.finish(), "");
}

// Property: for random id sequences (many ending or passing through invalid UTF-8), the chunks
// concatenate to the full decode; chunks are valid UTF-8 and, when the full text has no U+FFFD,
// never contain one (no partial character was emitted).
TEST(Detokenizer, RandomSequencesConcatenateToFullDecode) {
  for (bool metaspace : {false, true}) {
    FakeTokenizer tok(metaspace);
    std::mt19937 rng(1234 + metaspace);
    for (int iter = 0; iter < 3000; ++iter) {
      std::vector<int32_t> ids(rng() % 24);
      for (auto& id : ids) id = static_cast<int32_t>(rng() % tok.vocab_size());
      for (bool skip : {true, false}) {
        std::string full = tok.decode(ids, skip);
        for (bool batched : {false, true}) {
          std::mt19937 batch_rng(iter);
          StreamOut out = stream(tok, ids, skip, batched ? &batch_rng : nullptr);
          ASSERT_EQ(out.all(), full) << "iter " << iter << " metaspace " << metaspace;
          bool full_clean = full.find("\xEF\xBF\xBD") == std::string::npos;
          for (const auto& c : out.chunks) {
            ASSERT_EQ(lossy_utf8(c), c);
            if (full_clean) {
              ASSERT_EQ(c.find("\xEF\xBF\xBD"), std::string::npos);
            }
          }
        }
      }
    }
  }
}

// ---- The real DeepSeek-V3 tokenizer (byte-level BPE) ----

const Tokenizer& deepseek() {
  static std::unique_ptr<Tokenizer> tok =
      Tokenizer::from_dir(std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3");
  return *tok;
}

const char* const kTexts[] = {
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "  leading spaces and\ttabs\r\nand CRLF\n\n\n",
    "中文分词测试，日本語のテキスト、한국어 텍스트.",
    "Emoji: 🧑🏽‍🚀 👩‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 ❤️‍🔥",
    "Rare CJK 𠜎𠜱𠝹𠱓 and math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑∫√",
    "العربية नमस्ते दुनिया ελληνικά русский",
    "def f(x):\n    return {'a': [1, 2, 3]}  # code\n",
    "Numbers 1234567890 3.14159 -0.5e10",
    "<think>\nreasoning</think>\n\nanswer<｜end▁of▁sentence｜>",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```"
    "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    "",
};

TEST(DetokenizerDeepSeek, TextsStreamToFullDecode) {
  const Tokenizer& tok = deepseek();
  int held_steps = 0;
  for (const char* text : kTexts) {
    std::vector<int32_t> ids = tok.encode(text, false);
    for (bool skip : {true, false}) {
      std::string full = tok.decode(ids, skip);
      StreamOut out = stream(tok, ids, skip);
      ASSERT_EQ(out.all(), full) << text;
      EXPECT_EQ(out.finish, "") << text;  // valid UTF-8 input leaves nothing pending
      for (const auto& c : out.chunks) {
        ASSERT_EQ(lossy_utf8(c), c);
        ASSERT_EQ(c.find("\xEF\xBF\xBD"), std::string::npos) << text;
        held_steps += c.empty();
      }
    }
    EXPECT_EQ(tok.decode(ids, false), text);
  }
  EXPECT_GT(held_steps, 0);  // some characters span several byte tokens
}

TEST(DetokenizerDeepSeek, SpecialTokens) {
  const Tokenizer& tok = deepseek();
  std::vector<int32_t> ids = {*tok.token_to_id("<｜begin▁of▁sentence｜>")};
  for (int32_t id : tok.encode("Hi there", false)) ids.push_back(id);
  ids.push_back(*tok.token_to_id("<｜end▁of▁sentence｜>"));
  EXPECT_EQ(stream(tok, ids, true).all(), "Hi there");
  EXPECT_EQ(stream(tok, ids, false).all(), "<｜begin▁of▁sentence｜>Hi there<｜end▁of▁sentence｜>");
}

// Random ids, biased to single-byte tokens so that sequences often break UTF-8 halfway.
TEST(DetokenizerDeepSeek, RandomIdsConcatenateToFullDecode) {
  const Tokenizer& tok = deepseek();
  std::mt19937 rng(99);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int iters = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ++iters;
    std::vector<int32_t> ids(rng() % 30);
    for (auto& id : ids) {
      id = static_cast<int32_t>(rng() % 3 ? rng() % 300 : rng() % tok.vocab_size());
    }
    bool skip = rng() % 2;
    std::mt19937 batch_rng(iters);
    StreamOut out = stream(tok, ids, skip, rng() % 2 ? &batch_rng : nullptr);
    std::string full = tok.decode(ids, skip);
    ASSERT_EQ(out.all(), full);
    bool full_clean = full.find("\xEF\xBF\xBD") == std::string::npos;
    for (const auto& c : out.chunks) {
      ASSERT_EQ(lossy_utf8(c), c);
      if (full_clean) {
        ASSERT_EQ(c.find("\xEF\xBF\xBD"), std::string::npos);
      }
    }
  }
  EXPECT_GT(iters, 100);
}

// The frontend's per-request chain on real tokens: detokenize -> stop strings -> reasoning ->
// tool calls, one id at a time.
TEST(DetokenizerDeepSeek, StreamingPipeline) {
  const Tokenizer& tok = deepseek();
  const std::string reasoning = "The user wants the weather in 巴黎 🌧️.\nCall the tool.\n";
  const std::string args = "{\"city\": \"巴黎\", \"unit\": \"°C\"}";
  const std::string output = reasoning + "</think>\n\nLet me check.\n\n<｜tool▁calls▁begin｜>" +
                             "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n" +
                             args + "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  std::vector<int32_t> ids = tok.encode(output, false);
  ids.push_back(*tok.token_to_id("<｜end▁of▁sentence｜>"));
  ids.push_back(tok.encode("ignored after stop", false).front());

  IncrementalDetokenizer detok(tok, /*skip_special_tokens=*/false);
  StopMatcher stops({"<｜end▁of▁sentence｜>"}, false);
  ReasoningParser reasoner(reasoning_options_for("deepseek_r1"));
  ToolCallParser tools(ToolParserOptions{1});
  std::string got_reasoning;
  ToolParseResult got;
  auto feed_content = [&](const ReasoningDelta& d) {
    got_reasoning += d.reasoning_content;
    accumulate(got, tools.push(d.content));
  };
  bool stopped = false;
  for (int32_t id : ids) {
    StopResult s = stops.push(detok.step(id));
    feed_content(reasoner.push(s.text));
    if (s.stopped) {
      stopped = true;
      break;
    }
  }
  ASSERT_TRUE(stopped);
  feed_content(reasoner.finish());
  accumulate(got, tools.finish());
  EXPECT_EQ(got_reasoning, reasoning);
  EXPECT_EQ(got.content, "Let me check.\n\n");
  ASSERT_EQ(got.tool_calls.size(), 1u);
  EXPECT_EQ(got.tool_calls[0].name, "get_weather");
  EXPECT_EQ(got.tool_calls[0].arguments, args);
}

}  // namespace
}  // namespace wideserve::tokenizer
