#include "tokenizer/post_processor.h"

#include <string>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "tokenizer/json_util.h"

namespace wideserve::tokenizer {
namespace {

using nlohmann::json;

// Identity on ids (ByteLevel only trims offsets, which we do not expose).
class NoOpProcessor : public PostProcessor {
 public:
  std::vector<int32_t> process(std::vector<int32_t> ids) const override { return ids; }
};

// A template of special-token ids and the sequence slot, e.g. [bos] $A [eos].
class TemplateProcessor : public PostProcessor {
 public:
  // An element of the template: a run of special ids, or the sequence itself (empty ids).
  struct Item {
    bool is_sequence = false;
    std::vector<int32_t> ids;
  };
  explicit TemplateProcessor(std::vector<Item> items) : items_(std::move(items)) {}
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const Item& it : items_) {
      if (it.is_sequence) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), it.ids.begin(), it.ids.end());
      }
    }
    return out;
  }

 private:
  std::vector<Item> items_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    for (const auto& s : steps_) ids = s->process(std::move(ids));
    return ids;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> make_template(const json& j) {
  auto single = j.find("single");
  WS_CHECK_CODE(kDataLoss, single != j.end() && single->is_array(),
                "tokenizer.json: TemplateProcessing needs an array 'single'");
  const json specials = j.value("special_tokens", json::object());
  std::vector<TemplateProcessor::Item> items;
  for (const json& piece : *single) {
    if (piece.contains("Sequence")) {
      items.push_back({true, {}});
      continue;
    }
    auto st = piece.find("SpecialToken");
    WS_CHECK_CODE(kDataLoss, st != piece.end() && st->contains("id"),
                  "tokenizer.json: TemplateProcessing item {} is neither Sequence nor SpecialToken",
                  piece.dump());
    std::string name = (*st)["id"].get<std::string>();
    auto sp = specials.find(name);
    WS_CHECK_CODE(kDataLoss, sp != specials.end() && sp->contains("ids"),
                  "tokenizer.json: TemplateProcessing special token '{}' missing from "
                  "special_tokens",
                  name);
    items.push_back({false, (*sp)["ids"].get<std::vector<int32_t>>()});
  }
  return std::make_unique<TemplateProcessor>(std::move(items));
}

// RobertaProcessing / BertProcessing: cls $A sep.
std::unique_ptr<PostProcessor> make_cls_sep(const json& j) {
  auto get = [&](const char* key) {
    auto it = j.find(key);
    WS_CHECK_CODE(kDataLoss, it != j.end() && it->is_array() && it->size() == 2,
                  "tokenizer.json: post_processor needs '{}': [token, id]", key);
    return (*it)[1].get<int32_t>();
  };
  std::vector<TemplateProcessor::Item> items{
      {false, {get("cls")}}, {true, {}}, {false, {get("sep")}}};
  return std::make_unique<TemplateProcessor>(std::move(items));
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& j) {
  if (j.is_null()) return nullptr;
  std::string type = json_type(j, "post_processor");
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (type == "TemplateProcessing") return make_template(j);
  if (type == "RobertaProcessing" || type == "BertProcessing") return make_cls_sep(j);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const auto& sub : json_array(j, "processors", "Sequence post_processor"))
      if (auto p = make_post_processor(sub)) steps.push_back(std::move(p));
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  WS_THROW(kUnimplemented, "tokenizer.json: unsupported post_processor type '{}'", type);
}

}  // namespace wideserve::tokenizer
