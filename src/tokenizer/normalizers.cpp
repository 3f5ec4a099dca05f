#include "tokenizer/normalizers.h"

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_util.h"

namespace wideserve::tokenizer {
namespace {

using nlohmann::json;

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  std::string normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& n : steps_) s = n->normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormForm form) : form_(form) {}
  std::string normalize(std::string_view text) const override {
    return normalize_unicode(text, form_);
  }

 private:
  NormForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override { return to_lower(text); }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string_view text) const override {
    if (text.empty()) return {};  // HF leaves empty segments empty
    return prefix_ + std::string(text);
  }

 private:
  std::string prefix_;
};

// Replace: every non-overlapping occurrence of a literal or regex becomes `content`.
class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> re, std::string literal, std::string content)
      : re_(std::move(re)), literal_(std::move(literal)), content_(std::move(content)) {}
  std::string normalize(std::string_view text) const override;

 private:
  std::unique_ptr<Regex> re_;
  std::string literal_;
  std::string content_;
};

std::string ReplaceNormalizer::normalize(std::string_view text) const {
  std::string out;
  size_t last = 0;
  if (re_) {
    std::vector<Span> m;
    re_->find_all(text, m);
    for (auto [b, e] : m) {
      out.append(text.substr(last, b - last));
      out += content_;
      last = e;
    }
  } else if (!literal_.empty()) {
    for (size_t p = text.find(literal_); p != std::string_view::npos;
         p = text.find(literal_, last)) {
      out.append(text.substr(last, p - last));
      out += content_;
      last = p + literal_.size();
    }
  }
  out.append(text.substr(last));
  return out;
}

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text) const override {
    size_t b = 0, e = text.size();
    while (left_ && b < e) {
      size_t k = b;
      if (!is_whitespace(utf8_next(text, k))) break;
      b = k;
    }
    while (right_ && e > b) {
      size_t k = utf8_prev(text, e), kk = k;
      if (!is_whitespace(utf8_next(text, kk))) break;
      e = k;
    }
    return std::string(text.substr(b, e - b));
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override {
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t b = pos;
      char32_t c = utf8_next(text, pos);
      if (!is_combining_mark(c)) out.append(text.substr(b, pos - b));
    }
    return out;
  }
};

class ByteLevelNormalizer : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override { return bytes_to_byte_level(text); }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j) {
  if (j.is_null()) return nullptr;
  std::string type = json_type(j, "normalizer");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& sub : json_array(j, "normalizers", "Sequence normalizer")) {
      if (auto n = make_normalizer(sub)) steps.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormForm::kNfkd);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Prepend") {
    return std::make_unique<PrependNormalizer>(json_string(j, "prepend", "Prepend normalizer"));
  }
  if (type == "Replace") {
    auto [regex, literal] = json_pattern(j, "Replace normalizer");
    return std::make_unique<ReplaceNormalizer>(std::move(regex), std::move(literal),
                                               json_string(j, "content", "Replace normalizer"));
  }
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(json_bool(j, "strip_left", true),
                                             json_bool(j, "strip_right", true));
  }
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  WS_THROW(kUnimplemented, "tokenizer.json: unsupported normalizer type '{}'", type);
}

}  // namespace wideserve::tokenizer
