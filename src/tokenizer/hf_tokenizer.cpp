#include "tokenizer/hf_tokenizer.h"

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_util.h"

namespace wideserve::tokenizer {

using nlohmann::json;

namespace {

AddedToken parse_added(const json& j) {
  WS_CHECK_CODE(kDataLoss,
                j.is_object() && j.contains("id") && j["id"].is_number_integer() &&
                    j.contains("content") && j["content"].is_string(),
                "tokenizer.json: added_tokens entry {} needs integer 'id' and string 'content'",
                j.dump().substr(0, 200));
  AddedToken t;
  t.id = j["id"].get<int32_t>();
  WS_CHECK_CODE(kDataLoss, t.id >= 0, "tokenizer.json: added token id {} is negative", t.id);
  t.content = j["content"].get<std::string>();
  t.single_word = j.value("single_word", false);
  t.lstrip = j.value("lstrip", false);
  t.rstrip = j.value("rstrip", false);
  t.special = j.value("special", false);
  t.normalized = j.value("normalized", !t.special);
  return t;
}

}  // namespace

HfTokenizer::HfTokenizer(const json& tok, const json& config) {
  WS_CHECK_CODE(kDataLoss, tok.is_object(), "tokenizer.json: top level must be an object");
  auto model = tok.find("model");
  WS_CHECK_CODE(kDataLoss, model != tok.end(), "tokenizer.json: missing 'model'");
  model_ = std::make_unique<BpeModel>(*model);
  normalizer_ = make_normalizer(tok.value("normalizer", json()));
  pre_tokenizer_ = make_pre_tokenizer(tok.value("pre_tokenizer", json()));
  post_processor_ = make_post_processor(tok.value("post_processor", json()));
  decoder_ = make_decoder(tok.value("decoder", json()));

  int32_t max_id = model_->max_id();
  if (auto a = tok.find("added_tokens"); a != tok.end() && !a->is_null()) {
    WS_CHECK_CODE(kDataLoss, a->is_array(), "tokenizer.json: 'added_tokens' must be an array");
    for (const json& e : *a) {
      AddedToken t = parse_added(e);
      // HF matches (and names) a normalized added token by its normalized content.
      if (t.normalized && normalizer_) t.content = normalizer_->normalize(t.content);
      max_id = std::max(max_id, t.id);
      (t.normalized ? has_normalized_added_ : has_raw_added_) = true;
      added_.add(std::move(t));
    }
  }
  added_.finalize();
  vocab_size_ = max_id + 1;
  special_.assign(vocab_size_, 0);
  for (const AddedToken& t : added_.tokens())
    if (t.special) special_[t.id] = 1;

  if (decoder_ && decoder_->is_byte_level()) {
    byte_level_bytes_.resize(vocab_size_);
    for (int32_t id = 0; id < vocab_size_; ++id) {
      const std::string* s = token_string(id);
      if (!s) continue;
      std::string bytes;
      size_t pos = 0;
      bool ok = true;
      while (pos < s->size() && ok) {
        int b = char_to_byte(utf8_next(*s, pos));
        ok = b >= 0;
        bytes.push_back(static_cast<char>(b));
      }
      byte_level_bytes_[id] = ok ? std::move(bytes) : *s;
    }
  }
  config_ = parse_tokenizer_config(config);
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  size_t bad = find_invalid_utf8(text);
  WS_CHECK_ARG(bad == std::string_view::npos, "encode: input is not valid UTF-8 (byte {})", bad);
  PieceList list;
  Piece whole;
  whole.text = text;
  whole.at_start = true;
  whole.start_span = text.empty() ? 0 : static_cast<uint32_t>(utf8_len(text[0]));
  if (has_raw_added_) {
    added_.split(whole, false, list.pieces);
  } else if (!text.empty()) {
    list.pieces.push_back(whole);
  }
  if (normalizer_ || has_normalized_added_) {
    std::vector<Piece> out;
    out.reserve(list.pieces.size());
    for (Piece p : list.pieces) {
      if (p.added_id >= 0) {
        out.push_back(p);
        continue;
      }
      if (normalizer_) {
        if (p.at_start) {
          // What the first character becomes still maps to original offset 0.
          p.start_span = static_cast<uint32_t>(
              normalizer_->normalize(p.text.substr(0, utf8_len(p.text[0]))).size());
        }
        p.text = list.arena.keep(normalizer_->normalize(p.text));
      }
      if (p.text.empty()) continue;
      if (has_normalized_added_) {
        added_.split(p, true, out);
      } else {
        out.push_back(p);
      }
    }
    list.pieces.swap(out);
  }
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(list);

  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const Piece& p : list.pieces) {
    if (p.added_id >= 0) {
      ids.push_back(p.added_id);
    } else {
      model_->tokenize(p, ids);
    }
  }
  if (add_special_tokens && post_processor_) ids = post_processor_->process(std::move(ids));
  return ids;
}

const std::string* HfTokenizer::token_string(int32_t id) const {
  if (const AddedToken* t = added_.by_id(id)) return &t->content;
  return model_->id_to_token(id);
}

std::string HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  // Ids that name no token are skipped, as HF does.
  auto skipped = [&](int32_t id) {
    return id < 0 || id >= vocab_size_ || (skip_special_tokens && special_[id]);
  };
  if (!byte_level_bytes_.empty()) {
    std::string bytes;
    for (int32_t id : ids) {
      if (skipped(id) || !token_string(id)) continue;
      bytes += byte_level_bytes_[id];
    }
    return utf8_lossy(bytes);
  }
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (skipped(id)) continue;
    if (const std::string* s = token_string(id)) tokens.push_back(*s);
  }
  std::string out;
  if (decoder_) {
    decoder_->decode_chain(tokens);
    for (const auto& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out += tokens[i];
    }
  }
  return out;
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (auto id = added_.id_of(token)) return id;
  return model_->token_to_id(token);
}

std::optional<std::string> HfTokenizer::id_to_token(int32_t id) const {
  if (const std::string* s = token_string(id)) return *s;
  return std::nullopt;
}

bool HfTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size_ && special_[id];
}

}  // namespace wideserve::tokenizer
