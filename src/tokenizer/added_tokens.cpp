#include "tokenizer/added_tokens.h"

#include "common/check.h"
#include "tokenizer/unicode_util.h"

namespace wideserve::tokenizer {

int32_t AddedVocabulary::Trie::add_node() {
  terminal.push_back(-1);
  return static_cast<int32_t>(terminal.size() - 1);
}

void AddedVocabulary::Trie::insert(std::string_view s, int32_t token_index) {
  if (terminal.empty()) add_node();
  if (s.empty()) return;  // an empty token can never match
  first_byte[static_cast<uint8_t>(s[0])] = true;
  int32_t node = 0;
  for (char ch : s) {
    uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(ch);
    auto it = edges.find(key);
    if (it == edges.end()) {
      int32_t child = add_node();
      edges.emplace(key, child);
      node = child;
    } else {
      node = it->second;
    }
  }
  terminal[node] = token_index;
}

std::pair<int32_t, size_t> AddedVocabulary::Trie::longest_at(std::string_view text,
                                                             size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]);
    auto it = edges.find(key);
    if (it == edges.end()) break;
    node = it->second;
    if (terminal[node] >= 0) best = {terminal[node], i + 1 - pos};
  }
  return best;
}

void AddedVocabulary::add(AddedToken token) {
  auto it = by_content_.find(token.content);
  if (it != by_content_.end()) {
    by_id_.erase(tokens_[it->second].id);
    tokens_[it->second] = std::move(token);
    by_id_[tokens_[it->second].id] = it->second;
  } else {
    by_content_.emplace(token.content, tokens_.size());
    by_id_[token.id] = tokens_.size();
    tokens_.push_back(std::move(token));
  }
  // Rebuild lazily: loading adds hundreds of tokens, so a rebuild per add would be quadratic.
  dirty_ = true;
}

void AddedVocabulary::finalize() {
  dirty_ = false;
  raw_trie_ = Trie();
  normalized_trie_ = Trie();
  raw_trie_.add_node();
  normalized_trie_.add_node();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    Trie& t = tokens_[i].normalized ? normalized_trie_ : raw_trie_;
    t.insert(tokens_[i].content, static_cast<int32_t>(i));
  }
}

std::optional<int32_t> AddedVocabulary::id_of(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::split(const Piece& piece, bool normalized, std::vector<Piece>& out) const {
  WS_CHECK(!dirty_, "AddedVocabulary::finalize() not called after add()");
  const Trie& trie = normalized ? normalized_trie_ : raw_trie_;
  std::string_view text = piece.text;
  size_t emitted = 0;  // end of the last emitted part
  size_t pos = 0;
  auto emit_text = [&](size_t b, size_t e) {
    if (e <= b) return;
    Piece p = piece;
    p.text = text.substr(b, e - b);
    p.at_start = piece.at_start && b < piece.start_span;
    p.start_span = p.at_start ? piece.start_span - static_cast<uint32_t>(b) : 0;
    out.push_back(p);
  };
  if (!trie.edges.empty()) {
    while (pos < text.size()) {
      if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
        ++pos;
        continue;
      }
      auto [index, len] = trie.longest_at(text, pos);
      if (index < 0) {
        ++pos;
        continue;
      }
      const AddedToken& tok = tokens_[index];
      size_t b = pos, e = pos + len;
      pos = e;  // matches never overlap: the search resumes after this one
      if (tok.single_word) {
        bool left_ok = b == 0 || !is_word_char([&] {
                         size_t k = utf8_prev(text, b);
                         return utf8_next(text, k);
                       }());
        bool right_ok = e == text.size() || !is_word_char([&] {
                          size_t k = e;
                          return utf8_next(text, k);
                        }());
        if (!left_ok || !right_ok) continue;
      }
      if (tok.lstrip) {
        size_t nb = b;
        while (nb > emitted) {
          size_t k = utf8_prev(text, nb);
          size_t kk = k;
          if (!is_whitespace(utf8_next(text, kk))) break;
          nb = k;
        }
        b = nb;
      }
      if (tok.rstrip) {
        while (e < text.size()) {
          size_t k = e;
          if (!is_whitespace(utf8_next(text, k))) break;
          e = k;
        }
        pos = e;
      }
      emit_text(emitted, b);
      Piece p;
      p.text = text.substr(b, e - b);
      p.added_id = tok.id;
      p.at_start = piece.at_start && b < piece.start_span;
      p.start_span = p.at_start ? piece.start_span - static_cast<uint32_t>(b) : 0;
      out.push_back(p);
      emitted = e;
    }
  }
  emit_text(emitted, text.size());
}

}  // namespace wideserve::tokenizer
