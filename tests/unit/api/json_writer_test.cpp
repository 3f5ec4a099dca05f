#include "api/json_writer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <string>

namespace wideserve::api {
namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonWriter, EscapesLikeJson) {
  EXPECT_EQ(json_quoted("plain"), "\"plain\"");
  EXPECT_EQ(json_quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json_quoted(std::string("\x00\x1f", 2)), R"("\u0000\u001f")");
  EXPECT_EQ(json_quoted("\x7f/"), "\"\x7f/\"");
  EXPECT_EQ(json_quoted("\xf0\x9f\x90\xb1"), "\"\xf0\x9f\x90\xb1\"");
}

TEST(JsonWriter, RepairsIllFormedUtf8) {
  const std::string kRep = "\xef\xbf\xbd";
  EXPECT_EQ(json_quoted("\xff"), "\"" + kRep + "\"");
  EXPECT_EQ(json_quoted("a\xc3"), "\"a" + kRep + "\"");                      // truncated
  EXPECT_EQ(json_quoted("\xc0\xaf"), "\"" + kRep + kRep + "\"");             // overlong
  EXPECT_EQ(json_quoted("\xed\xa0\x80"), "\"" + kRep + kRep + kRep + "\"");  // surrogate
  EXPECT_EQ(json_quoted("\xf4\x90\x80\x80"),
            "\"" + kRep + kRep + kRep + kRep + "\"");  // > U+10FFFF
  EXPECT_TRUE(is_valid_utf8("h\xc3\xa9llo \xf0\x9f\x90\xb1"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\x80"));
}

// Random bytes always give text nlohmann accepts, equal to the input when it was valid UTF-8.
TEST(JsonWriter, RandomBytesRoundTrip) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s(rng() % 12, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() % 0x20 : rng());
    std::string q = json_quoted(s);
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(q)) << q;
    if (is_valid_utf8(s)) EXPECT_EQ(j.get<std::string>(), s);
  }
}

TEST(JsonWriter, Floats) {
  auto f = [](float v) {
    std::string s;
    append_json_float(s, v);
    return s;
  };
  EXPECT_EQ(f(0.0f), "0.0");
  EXPECT_EQ(f(-2.0f), "-2.0");
  EXPECT_EQ(f(-0.1f), "-0.1");
  EXPECT_EQ(f(-std::numeric_limits<float>::infinity()), "-9999.0");
  EXPECT_EQ(f(std::numeric_limits<float>::quiet_NaN()), "-9999.0");
  EXPECT_EQ(nlohmann::json::parse(f(1e-30f)).get<float>(), 1e-30f);
}

TEST(JsonWriter, CommasAndNesting) {
  JsonWriter w;
  w.begin_object();
  w.key("a").integer(-5);
  w.key("b").begin_array().integer(1).string("x").null().boolean(true).begin_object().end_object();
  w.end_array();
  w.key("c").raw(R"({"z":[]})");
  w.key("d").begin_array().end_array();
  w.end_object();
  EXPECT_EQ(w.str(), R"({"a":-5,"b":[1,"x",null,true,{}],"c":{"z":[]},"d":[]})");
}

}  // namespace
}  // namespace wideserve::api
