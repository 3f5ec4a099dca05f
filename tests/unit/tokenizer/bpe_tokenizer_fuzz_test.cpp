// Bounded randomized stress of encode/decode: random bytes, random code points, and splices of
// special-token strings. No crash, no hang; decode(encode(x)) == x for valid UTF-8.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

#include "common/check.h"
#include "tokenizer/tokenizer.h"

namespace wideserve::tokenizer {
namespace {

void append_cp(std::string& s, uint32_t c) {
  if (c < 0x80) {
    s.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (c >> 6)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (c >> 12)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (c >> 18)));
    s.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string random_text(std::mt19937_64& rng) {
  static const char* kPieces[] = {"<｜User｜>", "<｜begin▁of▁sentence｜>",
                                  "<｜",        "｜>",
                                  " ",          "\r\n",
                                  "\t",         "123456",
                                  "\u200d",     "👍🏽",
                                  "\u0301",     "'s",
                                  "Ġ",          "▁"};
  std::string s;
  int n = std::uniform_int_distribution<int>(0, 64)(rng);
  for (int i = 0; i < n; ++i) {
    int kind = std::uniform_int_distribution<int>(0, 9)(rng);
    if (kind < 3) {
      append_cp(s, std::uniform_int_distribution<uint32_t>(0x20, 0x7E)(rng));
    } else if (kind < 6) {
      uint32_t c;
      do {
        c = std::uniform_int_distribution<uint32_t>(0, 0x10FFFF)(rng);
      } while (c >= 0xD800 && c <= 0xDFFF);
      append_cp(s, c);
    } else if (kind < 8) {
      s += kPieces[std::uniform_int_distribution<size_t>(0, std::size(kPieces) - 1)(rng)];
    } else {
      append_cp(s, std::uniform_int_distribution<uint32_t>(0x80, 0x7FF)(rng));
    }
  }
  return s;
}

TEST(TokenizerFuzz, RandomTextRoundTrips) {
  auto tok = Tokenizer::from_dir(std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3");
  std::mt19937_64 rng(1234);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int iters = 0;
  while (std::chrono::steady_clock::now() < deadline && iters < 200000) {
    std::string s = random_text(rng);
    auto ids = tok->encode(s, iters % 2 == 0);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size());
    ASSERT_EQ(tok->decode(ids, false), s) << "iteration " << iters;
    ++iters;
  }
  EXPECT_GT(iters, 100);
}

TEST(TokenizerFuzz, RandomBytesNeverCrash) {
  auto tok = Tokenizer::from_dir(std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3");
  std::mt19937_64 rng(99);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int rejected = 0, iters = 0;
  while (std::chrono::steady_clock::now() < deadline && iters < 200000) {
    std::string s(std::uniform_int_distribution<size_t>(0, 48)(rng), '\0');
    for (char& c : s) c = static_cast<char>(rng());
    try {
      auto ids = tok->encode(s, false);
      EXPECT_EQ(tok->decode(ids, false), s);
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kInvalidArgument);  // invalid UTF-8 is reported, not fatal
      ++rejected;
    }
    ++iters;
  }
  EXPECT_GT(rejected, 0);
}

TEST(TokenizerFuzz, RandomIdsDecodeToValidUtf8) {
  auto tok = Tokenizer::from_dir(std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3");
  std::mt19937_64 rng(7);
  for (int it = 0; it < 20000; ++it) {
    std::vector<int32_t> ids(std::uniform_int_distribution<size_t>(0, 40)(rng));
    for (int32_t& id : ids) id = std::uniform_int_distribution<int32_t>(-5, 130000)(rng);
    std::string s = tok->decode(ids, it % 2 == 0);
    // Decoded text must be valid UTF-8 so it can be re-encoded.
    EXPECT_NO_THROW(tok->encode(s, false));
  }
}

}  // namespace
}  // namespace wideserve::tokenizer
