#include "tokenizer/stop_matcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace wideserve::tokenizer {
namespace {

struct Outcome {
  std::string text;
  bool stopped = false;
  int stop_index = -1;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{\"" << o.text << "\", stopped=" << o.stopped << ", index=" << o.stop_index << "}";
}

// Reference: the match that ends first (ties: longest) over the whole text.
Outcome reference(std::string_view text, const std::vector<std::string>& stops, bool include) {
  size_t best_end = std::string::npos, best_start = 0;
  int best = -1;
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) continue;
    size_t pos = text.find(stops[i]);
    if (pos == std::string::npos) continue;
    size_t end = pos + stops[i].size();
    if (end < best_end || (end == best_end && pos < best_start)) {
      best_end = end;
      best_start = pos;
      best = static_cast<int>(i);
    }
  }
  if (best < 0) return {std::string(text), false, -1};
  return {std::string(text.substr(0, include ? best_end : best_start)), true, best};
}

// Feeds chunks; checks that released text never runs past what the reference keeps.
Outcome run(const std::vector<std::string_view>& chunks, const std::vector<std::string>& stops,
            bool include) {
  StopMatcher m(stops, include);
  Outcome out;
  for (std::string_view c : chunks) {
    StopResult r = m.push(c);
    out.text += r.text;
    if (r.stopped) {
      out.stopped = true;
      out.stop_index = r.stop_index;
    }
  }
  if (!out.stopped) out.text += m.flush();
  return out;
}

std::vector<std::string_view> split_at(std::string_view s, std::vector<size_t> cuts) {
  std::vector<std::string_view> parts;
  size_t prev = 0;
  for (size_t c : cuts) {
    parts.push_back(s.substr(prev, c - prev));
    prev = c;
  }
  parts.push_back(s.substr(prev));
  return parts;
}

void check_all_splits(std::string_view text, const std::vector<std::string>& stops) {
  for (bool include : {false, true}) {
    Outcome want = reference(text, stops, include);
    EXPECT_EQ(run({text}, stops, include), want) << text;
    for (size_t i = 0; i <= text.size(); ++i) {
      for (size_t j = i; j <= text.size(); ++j) {
        ASSERT_EQ(run(split_at(text, {i, j}), stops, include), want)
            << text << " cut " << i << "," << j;
      }
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
    ASSERT_EQ(run(bytes, stops, include), want) << text;
  }
}

TEST(StopMatcher, NoStopStringsPassesEverything) {
  StopMatcher m({}, false);
  EXPECT_EQ(m.push("abc").text, "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HoldsPartialMatchAndReleasesIt) {
  StopMatcher m({"STOP"}, false);
  StopResult r = m.push("hello ST");
  EXPECT_EQ(r.text, "hello ");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(m.held_bytes(), 2u);
  r = m.push("ART");
  EXPECT_EQ(r.text, "START");
  EXPECT_EQ(m.held_bytes(), 0u);
  r = m.push(" S");
  EXPECT_EQ(r.text, " ");
  r = m.push("TOP and more");
  EXPECT_EQ(r.text, "");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.stop_index, 0);
  EXPECT_TRUE(m.push("x").stopped);
  EXPECT_EQ(m.push("x").text, "");
}

TEST(StopMatcher, IncludeStopString) {
  StopMatcher m({"</end>"}, true);
  EXPECT_EQ(m.push("a</e").text, "a");
  StopResult r = m.push("nd>b");
  EXPECT_EQ(r.text, "</end>");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, FlushReleasesHeldTextWithoutStop) {
  StopMatcher m({"abc"}, false);
  EXPECT_EQ(m.push("xxab").text, "xx");
  EXPECT_EQ(m.flush(), "ab");
}

TEST(StopMatcher, EarliestEndingMatchWinsAndReportsIndex) {
  // "bc" completes before "abcd" does; a char-by-char stream would see it first.
  EXPECT_EQ(run({"xabcd"}, {"abcd", "bc"}, false), (Outcome{"xa", true, 1}));
  // Same end: the longer one (earlier start) wins.
  EXPECT_EQ(run({"xabc"}, {"bc", "abc"}, false), (Outcome{"x", true, 1}));
  EXPECT_EQ(run({"xabc"}, {"bc", "abc"}, true), (Outcome{"xabc", true, 1}));
}

TEST(StopMatcher, EmptyStopStringsIgnored) {
  EXPECT_EQ(run({"abc"}, {"", "c"}, false), (Outcome{"ab", true, 1}));
}

TEST(StopMatcher, EverySplitPoint) {
  check_all_splits("The answer is 42.\n\nObservation: done", {"Observation:", "\n\n\n"});
  check_all_splits("aaaaab", {"aab", "aaaaaaa"});
  check_all_splits("abababac", {"ababac", "abac", "c"});
  check_all_splits("no match here at all", {"xyz", "heres"});
  check_all_splits("overlap <｜end▁of▁sentence｜> tail", {"<｜end▁of▁sentence｜>", "<｜"});
  check_all_splits("日本語のテキスト。終わり", {"終わり", "。終"});
  check_all_splits("emoji 👩‍👩‍👧 family", {"👧 fam", "👩‍👩‍👦"});
  check_all_splits("stop at the very end STOP", {"STOP"});
  check_all_splits("STOP at the start", {"STOP"});
}

// Never releases a partial UTF-8 character when fed whole characters.
TEST(StopMatcher, UnicodeHeldAtCharacterBoundaries) {
  StopMatcher m({"中文X"}, false);
  StopResult r = m.push("abc中");
  EXPECT_EQ(r.text, "abc");
  r = m.push("文");
  EXPECT_EQ(r.text, "");
  r = m.push("Y");
  EXPECT_EQ(r.text, "中文Y");
}

// Long, self-overlapping stop strings stay linear: byte-at-a-time pushes of a long text.
TEST(StopMatcher, LongStopStringsAreFast) {
  std::string stop(2000, 'a');
  stop += 'b';
  StopMatcher m({stop, std::string(1500, 'a') + "c"}, false);
  std::string text(200000, 'a');
  size_t released = 0;
  auto start = std::chrono::steady_clock::now();
  for (char c : text) released += m.push(std::string_view(&c, 1)).text.size();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(released, text.size() - 2000);
  StopResult r = m.push("b tail");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.stop_index, 0);
}

TEST(StopMatcher, RandomChunkingFuzz) {
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a", "b", "c", "\n", "é", "中", "👍"};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int iters = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ++iters;
    auto rand_str = [&](size_t max_len) {
      std::string s;
      size_t n = rng() % (max_len + 1);
      for (size_t i = 0; i < n; ++i) s += alphabet[rng() % std::size(alphabet)];
      return s;
    };
    std::vector<std::string> stops(rng() % 4);
    for (auto& s : stops) s = rand_str(4);
    std::string text = rand_str(40);
    bool include = rng() % 2;
    std::vector<std::string_view> chunks;
    for (size_t i = 0; i < text.size();) {
      size_t n = std::min<size_t>(text.size() - i, rng() % 6);
      chunks.push_back(std::string_view(text).substr(i, n));
      i += n;
    }
    ASSERT_EQ(run(chunks, stops, include), reference(text, stops, include)) << text;
  }
  EXPECT_GT(iters, 1000);
}

}  // namespace
}  // namespace wideserve::tokenizer
