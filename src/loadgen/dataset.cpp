#include "loadgen/dataset.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/check.h"

namespace wideserve::loadgen {
namespace {

// Common short words: each is one token in typical BPE vocabularies (with its leading space).
constexpr std::array<std::string_view, 96> kWords = {
    "the",   "of",    "and",   "to",     "in",   "is",   "you",   "that",   "it",    "he",
    "was",   "for",   "on",    "are",    "as",   "with", "his",   "they",   "at",    "be",
    "this",  "have",  "from",  "or",     "one",  "had",  "by",    "word",   "but",   "not",
    "what",  "all",   "were",  "we",     "when", "your", "can",   "said",   "there", "use",
    "an",    "each",  "which", "she",    "do",   "how",  "their", "if",     "will",  "up",
    "other", "about", "out",   "many",   "then", "them", "these", "so",     "some",  "her",
    "would", "make",  "like",  "him",    "into", "time", "has",   "look",   "two",   "more",
    "write", "go",    "see",   "number", "no",   "way",  "could", "people", "my",    "than",
    "first", "water", "been",  "call",   "who",  "oil",  "its",   "now",    "find",  "long",
    "down",  "day",   "did",   "get",    "come", "made"};

std::string words_text(const std::vector<std::string_view>& words) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) s.push_back(' ');
    s.append(words[i]);
  }
  return s;
}

std::vector<int32_t> random_ids(int64_t n, int32_t lo, int32_t hi, std::mt19937_64& rng) {
  WS_CHECK_ARG(lo >= 0 && hi > lo, "token id range [{}, {}) is empty", lo, hi);
  std::uniform_int_distribution<int32_t> d(lo, hi - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = d(rng);
  return ids;
}

const nlohmann::json* find_turns(const nlohmann::json& item) {
  if (!item.is_object()) return nullptr;
  for (const char* key : {"conversations", "conversation"}) {
    auto it = item.find(key);
    if (it != item.end() && it->is_array()) return &*it;
  }
  return nullptr;
}

std::string turn_text(const nlohmann::json& turn) {
  if (!turn.is_object()) return {};
  for (const char* key : {"value", "content"}) {
    auto it = turn.find(key);
    if (it != turn.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

}  // namespace

int64_t estimate_tokens(std::string_view text) {
  if (text.empty()) return 0;
  return std::max<int64_t>(1, static_cast<int64_t>((text.size() + 3) / 4));
}

std::string random_text(int64_t tokens, std::mt19937_64& rng, const TokenCounter& counter) {
  WS_CHECK_ARG(tokens >= 0, "negative token count {}", tokens);
  std::uniform_int_distribution<size_t> pick(0, kWords.size() - 1);
  std::vector<std::string_view> words;
  for (int64_t i = 0; i < tokens; ++i) words.push_back(kWords[pick(rng)]);
  if (!counter) return words_text(words);
  // Words may be several tokens or merge: rescale the word count by the observed ratio, then
  // trim so that the text never exceeds the target.
  auto resize = [&](size_t n) {
    while (words.size() < n) words.push_back(kWords[pick(rng)]);
    words.resize(n);
  };
  int64_t n = counter(words_text(words));
  for (int iter = 0; iter < 16 && n != tokens && n > 0; ++iter) {
    double w = static_cast<double>(words.size());
    auto want = static_cast<int64_t>(std::llround(w * static_cast<double>(tokens) / n));
    if (want == static_cast<int64_t>(words.size())) want += n < tokens ? 1 : -1;
    resize(static_cast<size_t>(std::max<int64_t>(0, want)));
    n = counter(words_text(words));
  }
  while (n > tokens && !words.empty()) {
    words.pop_back();
    n = counter(words_text(words));
  }
  return words_text(words);
}

int64_t random_length(int64_t len, double range_ratio, std::mt19937_64& rng) {
  WS_CHECK_ARG(len >= 1, "length must be >= 1, got {}", len);
  WS_CHECK_ARG(range_ratio >= 0 && range_ratio <= 1, "range ratio {} outside [0, 1]", range_ratio);
  int64_t lo = std::max<int64_t>(1, static_cast<int64_t>(std::floor(len * range_ratio)));
  lo = std::min(lo, len);
  return std::uniform_int_distribution<int64_t>(lo, len)(rng);
}

std::vector<Prompt> make_random_prompts(const RandomDatasetConfig& cfg,
                                        const TokenCounter& counter) {
  WS_CHECK_ARG(cfg.num_prompts >= 1, "need at least one prompt");
  std::mt19937_64 rng(cfg.seed);
  std::vector<Prompt> out;
  out.reserve(static_cast<size_t>(cfg.num_prompts));
  for (int64_t i = 0; i < cfg.num_prompts; ++i) {
    Prompt p;
    p.input_tokens = random_length(cfg.input_len, cfg.range_ratio, rng);
    p.output_tokens = random_length(cfg.output_len, cfg.range_ratio, rng);
    if (cfg.token_ids) {
      p.token_ids = random_ids(p.input_tokens, cfg.id_low, cfg.id_high, rng);
    } else {
      // Without a tokenizer one word is about one token; the server's usage reports the truth.
      p.text = random_text(p.input_tokens, rng, counter);
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Prompt> load_sharegpt(const ShareGptConfig& cfg, const TokenCounter& counter) {
  std::ifstream f(cfg.path, std::ios::binary);
  WS_CHECK_CODE(kNotFound, f.good(), "cannot open ShareGPT file {}", cfg.path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  std::vector<nlohmann::json> items;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    auto j = nlohmann::json::parse(text, nullptr, false);
    WS_CHECK_CODE(kDataLoss, j.is_array(), "{}: not a JSON array", cfg.path);
    for (auto& item : j) items.push_back(std::move(item));
  } else {
    std::istringstream lines(text);
    std::string line;
    int64_t lineno = 0;
    while (std::getline(lines, line)) {
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      WS_CHECK_CODE(kDataLoss, !j.is_discarded(), "{}:{}: not JSON", cfg.path, lineno);
      items.push_back(std::move(j));
    }
  }
  std::mt19937_64 rng(cfg.seed);
  std::shuffle(items.begin(), items.end(), rng);
  const TokenCounter count = counter ? counter : TokenCounter(estimate_tokens);
  std::vector<Prompt> out;
  for (const auto& item : items) {
    if (static_cast<int64_t>(out.size()) >= cfg.num_prompts) break;
    const nlohmann::json* turns = find_turns(item);
    if (!turns || turns->size() < 2) continue;
    Prompt p;
    p.text = turn_text((*turns)[0]);
    std::string reply = turn_text((*turns)[1]);
    p.input_tokens = count(p.text);
    p.output_tokens = cfg.fixed_output_len > 0 ? cfg.fixed_output_len : count(reply);
    if (p.input_tokens < 2 || p.output_tokens < 2) continue;
    if (cfg.fixed_output_len <= 0 && (p.input_tokens > cfg.max_input_len ||
                                      p.input_tokens + p.output_tokens > cfg.max_total_len))
      continue;
    out.push_back(std::move(p));
  }
  WS_CHECK_CODE(kDataLoss, !out.empty(),
                "{}: no usable conversations (need a human turn and a reply)", cfg.path);
  return out;
}

std::vector<Prompt> make_prefix_prompts(const PrefixDatasetConfig& cfg,
                                        const TokenCounter& counter) {
  WS_CHECK_ARG(cfg.num_groups >= 1 && cfg.users_per_group >= 1,
               "prefix workload needs >= 1 group and >= 1 user per group");
  WS_CHECK_ARG(cfg.system_len >= 1 && cfg.question_len >= 1 && cfg.output_len >= 1,
               "prefix workload lengths must be >= 1");
  std::mt19937_64 rng(cfg.seed);
  std::vector<Prompt> out;
  for (int64_t g = 0; g < cfg.num_groups; ++g) {
    std::vector<int32_t> sys_ids;
    std::string sys_text;
    if (cfg.token_ids)
      sys_ids = random_ids(cfg.system_len, cfg.id_low, cfg.id_high, rng);
    else
      sys_text = random_text(cfg.system_len, rng, counter);
    for (int64_t u = 0; u < cfg.users_per_group; ++u) {
      Prompt p;
      p.output_tokens = cfg.output_len;
      p.input_tokens = cfg.system_len + cfg.question_len;
      if (cfg.token_ids) {
        p.token_ids = sys_ids;
        auto q = random_ids(cfg.question_len, cfg.id_low, cfg.id_high, rng);
        p.token_ids.insert(p.token_ids.end(), q.begin(), q.end());
      } else {
        p.system = sys_text;
        p.text = random_text(cfg.question_len, rng, counter);
      }
      out.push_back(std::move(p));
    }
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

}  // namespace wideserve::loadgen
