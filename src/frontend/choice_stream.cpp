#include "frontend/choice_stream.h"

#include <algorithm>

#include "common/check.h"

namespace wideserve::frontend {

ChoiceStream::ChoiceStream(const tokenizer::Tokenizer& tok, const ChoiceOptions& opts, int index)
    : tok_(tok),
      opts_(opts),
      index_(index),
      detok_(tok, opts.skip_special_tokens),
      stop_(opts.stop, opts.include_stop_str_in_output) {
  if (opts_.chat && opts_.reasoning) reasoning_.emplace(*opts_.reasoning);
  if (opts_.chat && opts_.parse_tool_calls)
    tools_.emplace(tokenizer::ToolParserOptions{opts_.tool_id_seed});
}

bool ChoiceStream::has_content(const api::ChoiceOut& c) {
  return !c.text.empty() || !c.reasoning_content.empty() || !c.tool_calls.empty() ||
         c.finish_reason.has_value() || (c.logprobs && !c.logprobs->empty()) ||
         (c.token_ids && !c.token_ids->empty()) || c.role.has_value();
}

std::string ChoiceStream::token_text(int32_t id) const {
  // The model's vocabulary can be larger than the tokenizer's (DeepSeek-V3: 129280 vs 128815
  // ids); HF decodes the padding ids to nothing.
  if (id < 0 || id >= tok_.vocab_size()) return {};
  const int32_t one[1] = {id};
  return tok_.decode(std::span<const int32_t>(one, 1), false);
}

void ChoiceStream::route_text(const std::string& text, api::ChoiceOut& d) {
  if (text.empty()) return;
  std::string content = text;
  if (reasoning_) {
    auto r = reasoning_->push(text);
    d.reasoning_content += r.reasoning_content;
    content = std::move(r.content);
  }
  if (tools_) {
    auto t = tools_->push(content);
    d.text += t.content;
    for (auto& c : t.tool_calls) {
      d.tool_calls.push_back(api::ToolCallOut{c.index, c.id, c.type, c.name, c.arguments});
      saw_tool_call_ = true;
    }
    return;
  }
  d.text += content;
}

api::ChoiceOut ChoiceStream::push(const engine::RequestOutput& out) {
  api::ChoiceOut d;
  d.index = index_;
  if (finished_) return d;
  if (opts_.logprobs) d.logprobs.emplace();
  if (opts_.return_token_ids) d.token_ids.emplace();
  std::string text;
  for (size_t i = 0; i < out.new_tokens.size() && !stopped_by_string_; ++i) {
    const int32_t id = out.new_tokens[i];
    ++completion_tokens_;
    if (d.token_ids) d.token_ids->push_back(id);
    if (d.logprobs && i < out.logprobs.size()) {
      const auto& lp = out.logprobs[i];
      api::TokenLogprobOut t;
      t.token = token_text(id);
      t.logprob = lp.logprob;
      for (const auto& alt : lp.top)
        t.top.push_back(api::TopLogprobOut{token_text(alt.token), alt.logprob});
      d.logprobs->push_back(std::move(t));
    }
    auto piece = id >= 0 && id < tok_.vocab_size() ? detok_.step(id) : std::string();
    auto s = stop_.push(piece);
    text += s.text;
    if (s.stopped) {
      stopped_by_string_ = true;
      d.stop_reason = opts_.stop.at(static_cast<size_t>(s.stop_index));
    }
  }
  d.text_offset = text_chars_;
  route_text(text, d);
  if (stopped_by_string_ || out.finish != engine::FinishReason::kNone) finish(d, out);
  text_chars_ += static_cast<int64_t>(d.text.size());
  return d;
}

void ChoiceStream::finish(api::ChoiceOut& d, const engine::RequestOutput& out) {
  finished_ = true;
  if (!stopped_by_string_) {
    // Flush what the detokenizer and the stop matcher still hold; a late stop match still counts.
    auto s = stop_.push(detok_.finish());
    std::string tail = s.text;
    if (s.stopped) {
      stopped_by_string_ = true;
      d.stop_reason = opts_.stop.at(static_cast<size_t>(s.stop_index));
    } else {
      tail += stop_.flush();
    }
    route_text(tail, d);
  }
  if (reasoning_) {
    auto r = reasoning_->finish();
    d.reasoning_content += r.reasoning_content;
    if (tools_) {
      auto t = tools_->push(r.content);
      d.text += t.content;
      for (auto& c : t.tool_calls)
        d.tool_calls.push_back(api::ToolCallOut{c.index, c.id, c.type, c.name, c.arguments});
    } else {
      d.text += r.content;
    }
  }
  if (tools_) {
    auto t = tools_->finish();
    d.text += t.content;
    for (auto& c : t.tool_calls)
      d.tool_calls.push_back(api::ToolCallOut{c.index, c.id, c.type, c.name, c.arguments});
    if (tools_->num_tool_calls() > 0) saw_tool_call_ = true;
  }
  if (stopped_by_string_) {
    d.finish_reason = "stop";
    return;
  }
  switch (out.finish) {
    case engine::FinishReason::kStop:
      d.finish_reason = saw_tool_call_ ? "tool_calls" : "stop";
      if (out.matched_stop_token >= 0 &&
          std::find(opts_.stop_token_ids.begin(), opts_.stop_token_ids.end(),
                    out.matched_stop_token) != opts_.stop_token_ids.end())
        d.stop_reason = out.matched_stop_token;
      break;
    case engine::FinishReason::kLength:
      d.finish_reason = saw_tool_call_ ? "tool_calls" : "length";
      break;
    case engine::FinishReason::kAbort:
      d.finish_reason = "abort";
      break;
    case engine::FinishReason::kError:
      error_ = out.error.empty() ? "the worker failed this request" : out.error;
      d.finish_reason = "error";
      break;
    case engine::FinishReason::kNone:
      break;
  }
}

void accumulate_choice(api::ChoiceOut& total, const api::ChoiceOut& d) {
  total.index = d.index;
  total.text += d.text;
  total.reasoning_content += d.reasoning_content;
  for (const auto& c : d.tool_calls) {
    auto it = std::find_if(total.tool_calls.begin(), total.tool_calls.end(),
                           [&](const api::ToolCallOut& t) { return t.index == c.index; });
    if (it == total.tool_calls.end()) {
      total.tool_calls.push_back(c);
      continue;
    }
    if (c.id) it->id = c.id;
    if (c.type) it->type = c.type;
    if (c.name) it->name = c.name;
    it->arguments += c.arguments;
  }
  if (d.logprobs) {
    if (!total.logprobs) total.logprobs.emplace();
    total.logprobs->insert(total.logprobs->end(), d.logprobs->begin(), d.logprobs->end());
  }
  if (d.token_ids) {
    if (!total.token_ids) total.token_ids.emplace();
    total.token_ids->insert(total.token_ids->end(), d.token_ids->begin(), d.token_ids->end());
  }
  if (d.finish_reason) total.finish_reason = d.finish_reason;
  if (!d.stop_reason.is_null()) total.stop_reason = d.stop_reason;
}

}  // namespace wideserve::frontend
