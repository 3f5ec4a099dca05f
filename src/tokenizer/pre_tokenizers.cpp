#include "tokenizer/pre_tokenizers.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_util.h"
#include "tokenizer/unicode_util.h"

namespace wideserve::tokenizer {
namespace {

using nlohmann::json;

// Applies `fn(piece, out)` to every piece that is not an added token.
template <typename Fn>
void for_each_text_piece(PieceList& list, Fn&& fn) {
  std::vector<Piece> out;
  out.reserve(list.pieces.size() * 2);
  for (const Piece& p : list.pieces) {
    if (p.added_id >= 0) {
      out.push_back(p);
    } else {
      fn(p, out);
    }
  }
  list.pieces.swap(out);
}

// Spans of the characters satisfying `pred`, each character its own span.
template <typename Pred>
void char_spans(std::string_view text, Pred&& pred, std::vector<Span>& out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t b = pos;
    char32_t c = utf8_next(text, pos);
    if (pred(c)) out.emplace_back(b, pos);
  }
}

SplitBehavior parse_behavior(const json& j) {
  std::string b = json_string(j, "behavior", "Split pre-tokenizer");
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  WS_THROW(kDataLoss, "tokenizer.json: unknown split behavior '{}'", b);
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(PieceList& list) const override {
    for (const auto& s : steps_) s->pre_tokenize(list);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> re, std::string literal, SplitBehavior behavior,
                    bool invert)
      : re_(std::move(re)), literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(PieceList& list) const override {
    std::vector<Span> m;
    for_each_text_piece(list, [&](const Piece& p, std::vector<Piece>& out) {
      m.clear();
      if (re_) {
        re_->find_all(p.text, m);
      } else if (!literal_.empty()) {
        for (size_t k = p.text.find(literal_); k != std::string_view::npos;
             k = p.text.find(literal_, k + literal_.size())) {
          m.emplace_back(k, k + literal_.size());
        }
      }
      split_piece(p, m, behavior_, invert_, out);
    });
  }

 private:
  std::unique_ptr<Regex> re_;
  std::string literal_;
  SplitBehavior behavior_;
  bool invert_;
};

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, bool materialize)
      : add_prefix_space_(add_prefix_space), materialize_(materialize) {
    if (use_regex) re_ = std::make_unique<Regex>(kGpt2Pattern);
  }
  void pre_tokenize(PieceList& list) const override {
    std::vector<Span> m;
    for_each_text_piece(list, [&](const Piece& in, std::vector<Piece>& out) {
      Piece p = in;
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) {
        p.text = list.arena.keep(" " + std::string(p.text));
        if (p.at_start) ++p.start_span;
      }
      size_t first = out.size();
      if (re_) {
        m.clear();
        re_->find_all(p.text, m);
        split_piece(p, m, SplitBehavior::kIsolated, false, out);
      } else if (!p.text.empty()) {
        out.push_back(p);
      }
      for (size_t i = first; i < out.size(); ++i) {
        // The model maps raw bytes itself unless a later step needs to see the alphabet.
        if (materialize_) {
          if (out[i].at_start) {
            out[i].start_span = static_cast<uint32_t>(
                bytes_to_byte_level(out[i].text.substr(0, out[i].start_span)).size());
          }
          out[i].text = list.arena.keep(bytes_to_byte_level(out[i].text));
        } else {
          out[i].byte_level = true;
        }
      }
    });
  }

 private:
  bool add_prefix_space_;
  bool materialize_;
  std::unique_ptr<Regex> re_;
};

// Metaspace: spaces become the replacement character, optionally prefixed, then split before it.
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}
  void pre_tokenize(PieceList& list) const override {
    std::vector<Span> m;
    for_each_text_piece(list, [&](const Piece& in, std::vector<Piece>& out) {
      std::string s;
      s.reserve(in.text.size() + 8);
      bool want_prefix =
          prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && in.at_start);
      bool prefixed = want_prefix && in.text.substr(0, 1) != " " &&
                      in.text.substr(0, replacement_.size()) != replacement_;
      if (prefixed) s += replacement_;
      for (char c : in.text) {
        if (c == ' ') {
          s += replacement_;
        } else {
          s.push_back(c);
        }
      }
      Piece p = in;
      if (in.at_start) {
        // Original offset 0 now also covers the prefix and the widened spaces in the span.
        size_t spaces = 0;
        for (size_t k = 0; k < in.start_span && k < in.text.size(); ++k)
          spaces += in.text[k] == ' ';
        p.start_span = static_cast<uint32_t>((prefixed ? replacement_.size() : 0) + in.start_span +
                                             spaces * (replacement_.size() - 1));
      }
      p.text = list.arena.keep(std::move(s));
      if (!split_) {
        if (!p.text.empty()) out.push_back(p);
        return;
      }
      m.clear();
      for (size_t k = p.text.find(replacement_); k != std::string_view::npos;
           k = p.text.find(replacement_, k + replacement_.size())) {
        m.emplace_back(k, k + replacement_.size());
      }
      split_piece(p, m, SplitBehavior::kMergedWithNext, false, out);
    });
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

// Character-class splitters (Digits, Punctuation, WhitespaceSplit, CharDelimiterSplit).
template <typename Pred>
class CharClassPreTokenizer : public PreTokenizer {
 public:
  CharClassPreTokenizer(Pred pred, SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void pre_tokenize(PieceList& list) const override {
    std::vector<Span> m;
    for_each_text_piece(list, [&](const Piece& p, std::vector<Piece>& out) {
      m.clear();
      char_spans(p.text, pred_, m);
      split_piece(p, m, behavior_, false, out);
    });
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> char_class(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharClassPreTokenizer<Pred>>(pred, behavior);
}

// Whitespace: keeps runs of word characters and runs of other non-space characters.
class WhitespacePreTokenizer : public PreTokenizer {
 public:
  WhitespacePreTokenizer() : re_(R"(\w+|[^\w\s]+)") {}
  void pre_tokenize(PieceList& list) const override {
    std::vector<Span> m;
    for_each_text_piece(list, [&](const Piece& p, std::vector<Piece>& out) {
      m.clear();
      re_.find_all(p.text, m);
      split_piece(p, m, SplitBehavior::kRemoved, true, out);
    });
  }

 private:
  Regex re_;
};

}  // namespace

void split_piece(const Piece& piece, const std::vector<Span>& matches, SplitBehavior behavior,
                 bool invert, std::vector<Piece>& out) {
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;
  segs.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (b > prev) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < piece.text.size()) segs.push_back({prev, piece.text.size(), invert});

  std::vector<Span> spans;
  spans.reserve(segs.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Seg& s : segs) spans.emplace_back(s.b, s.e);
      break;
    case SplitBehavior::kRemoved:
      for (const Seg& s : segs)
        if (!s.match) spans.emplace_back(s.b, s.e);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (const Seg& s : segs) {
        if (s.match && !prev_match && !spans.empty()) {
          spans.back().second = s.e;
        } else {
          spans.emplace_back(s.b, s.e);
        }
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool next_match = false;
      for (size_t i = segs.size(); i-- > 0;) {
        const Seg& s = segs[i];
        if (s.match && !next_match && !spans.empty()) {
          spans.back().first = s.b;
        } else {
          spans.emplace_back(s.b, s.e);
        }
        next_match = s.match;
      }
      std::reverse(spans.begin(), spans.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool prev_match = false;
      for (const Seg& s : segs) {
        if (s.match && prev_match && !spans.empty()) {
          spans.back().second = s.e;
        } else {
          spans.emplace_back(s.b, s.e);
        }
        prev_match = s.match;
      }
      break;
    }
  }
  for (auto [b, e] : spans) {
    if (e <= b) continue;
    Piece p = piece;
    p.text = piece.text.substr(b, e - b);
    p.at_start = piece.at_start && b < piece.start_span;
    p.start_span = p.at_start ? piece.start_span - static_cast<uint32_t>(b) : 0;
    out.push_back(p);
  }
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, bool last) {
  if (j.is_null()) return nullptr;
  std::string type = json_type(j, "pre_tokenizer");
  if (type == "Sequence") {
    const json& subs = json_array(j, "pretokenizers", "Sequence pre-tokenizer");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < subs.size(); ++i) {
      if (auto p = make_pre_tokenizer(subs[i], last && i + 1 == subs.size())) {
        steps.push_back(std::move(p));
      }
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    auto [regex, literal] = json_pattern(j, "Split pre-tokenizer");
    return std::make_unique<SplitPreTokenizer>(std::move(regex), std::move(literal),
                                               parse_behavior(j), json_bool(j, "invert", false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(json_bool(j, "add_prefix_space", true),
                                                   json_bool(j, "use_regex", true), !last);
  }
  if (type == "Metaspace") {
    std::string repl = json_string_or(j, "replacement", "\xE2\x96\x81");
    std::string scheme = json_string_or(j, "prepend_scheme", "");
    MetaspacePreTokenizer::Prepend prepend = MetaspacePreTokenizer::Prepend::kAlways;
    if (scheme.empty()) {
      if (!json_bool(j, "add_prefix_space", true)) prepend = MetaspacePreTokenizer::Prepend::kNever;
    } else if (scheme == "first") {
      prepend = MetaspacePreTokenizer::Prepend::kFirst;
    } else if (scheme == "never") {
      prepend = MetaspacePreTokenizer::Prepend::kNever;
    } else {
      WS_CHECK_CODE(kDataLoss, scheme == "always", "tokenizer.json: unknown prepend_scheme '{}'",
                    scheme);
    }
    return std::make_unique<MetaspacePreTokenizer>(repl, prepend, json_bool(j, "split", true));
  }
  if (type == "Digits") {
    bool individual = json_bool(j, "individual_digits", false);
    return char_class([](char32_t c) { return is_numeric(c); },
                      individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }
  if (type == "Punctuation") {
    SplitBehavior b = j.contains("behavior") ? parse_behavior(j) : SplitBehavior::kIsolated;
    return char_class([](char32_t c) { return is_punctuation(c); }, b);
  }
  if (type == "WhitespaceSplit") {
    return char_class([](char32_t c) { return is_whitespace(c); }, SplitBehavior::kRemoved);
  }
  if (type == "CharDelimiterSplit") {
    std::string d = json_string(j, "delimiter", "CharDelimiterSplit pre-tokenizer");
    size_t k = 0;
    char32_t delim = d.empty() ? 0 : utf8_next(d, k);
    return char_class([delim](char32_t c) { return c == delim; }, SplitBehavior::kRemoved);
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(
        char_class([](char32_t c) { return is_whitespace(c); }, SplitBehavior::kRemoved));
    steps.push_back(
        char_class([](char32_t c) { return is_punctuation(c); }, SplitBehavior::kIsolated));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  WS_THROW(kUnimplemented, "tokenizer.json: unsupported pre_tokenizer type '{}'", type);
}

}  // namespace wideserve::tokenizer
