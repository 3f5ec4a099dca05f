#include "frontend/choice_stream.h"

#include <gtest/gtest.h>

#include <memory>

namespace wideserve::frontend {
namespace {

const tokenizer::Tokenizer& tok() {
  static auto t =
      tokenizer::Tokenizer::from_dir(std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3");
  return *t;
}

engine::RequestOutput out_of(std::vector<int32_t> ids,
                             engine::FinishReason f = engine::FinishReason::kNone) {
  engine::RequestOutput o;
  o.new_tokens = std::move(ids);
  o.finish = f;
  return o;
}

// Feeds `text`'s tokens one per output, finishing with `finish` on the last; returns the
// accumulated choice.
api::ChoiceOut run(ChoiceStream& cs, const std::string& text,
                   engine::FinishReason finish = engine::FinishReason::kLength,
                   int* deltas_with_content = nullptr) {
  auto ids = tok().encode(text, false);
  api::ChoiceOut total;
  int with_content = 0;
  for (size_t i = 0; i < ids.size() && !cs.finished(); ++i) {
    auto d = cs.push(out_of({ids[i]}, i + 1 == ids.size() ? finish : engine::FinishReason::kNone));
    if (ChoiceStream::has_content(d)) ++with_content;
    accumulate_choice(total, d);
  }
  if (deltas_with_content) *deltas_with_content = with_content;
  return total;
}

TEST(ChoiceStream, TextStreamsToTheWholeDecode) {
  ChoiceOptions o;
  o.chat = false;
  ChoiceStream cs(tok(), o, 0);
  const std::string text =
      "Hello world, 你好世界! Ünïcödé ✓ and code: for (int i = 0; i < n; ++i) {}";
  auto total = run(cs, text);
  EXPECT_EQ(total.text, text);
  EXPECT_EQ(total.finish_reason, "length");
  EXPECT_EQ(cs.completion_tokens(), static_cast<int64_t>(tok().encode(text, false).size()));
}

TEST(ChoiceStream, StopStringCutsTheTextAndReportsIt) {
  ChoiceOptions o;
  o.chat = false;
  o.stop = {"never", "Paris"};
  ChoiceStream cs(tok(), o, 3);
  auto total = run(cs, "The capital of France is Paris, and then more text follows.");
  EXPECT_EQ(total.text, "The capital of France is ");
  EXPECT_EQ(total.finish_reason, "stop");
  EXPECT_EQ(total.stop_reason, "Paris");
  EXPECT_TRUE(cs.stopped_by_string());
  EXPECT_TRUE(cs.finished());
  EXPECT_EQ(total.index, 3);
  // Later outputs are ignored.
  auto late = cs.push(out_of({100}));
  EXPECT_FALSE(ChoiceStream::has_content(late));
}

TEST(ChoiceStream, IncludeStopStringAndStopAtTheVeryEnd) {
  ChoiceOptions o;
  o.chat = false;
  o.stop = {"Paris"};
  o.include_stop_str_in_output = true;
  ChoiceStream cs(tok(), o, 0);
  auto total = run(cs, "It is Paris", engine::FinishReason::kLength);
  EXPECT_EQ(total.text, "It is Paris");
  EXPECT_EQ(total.finish_reason, "stop");
}

TEST(ChoiceStream, StopTokenReportsStopReasonOnlyWhenRequested) {
  ChoiceOptions o;
  o.chat = false;
  o.stop_token_ids = {42};
  ChoiceStream a(tok(), o, 0);
  auto r = out_of({42}, engine::FinishReason::kStop);
  r.matched_stop_token = 42;
  auto d = a.push(r);
  EXPECT_EQ(d.finish_reason, "stop");
  EXPECT_EQ(d.stop_reason, 42);
  ChoiceStream b(tok(), o, 0);
  auto eos = out_of({1}, engine::FinishReason::kStop);
  eos.matched_stop_token = 1;
  d = b.push(eos);
  EXPECT_EQ(d.finish_reason, "stop");
  EXPECT_TRUE(d.stop_reason.is_null());
}

TEST(ChoiceStream, ReasoningSplitsThinkFromContent) {
  ChoiceOptions o;
  o.reasoning = tokenizer::reasoning_options_for("deepseek_r1");
  ChoiceStream cs(tok(), o, 0);
  auto total =
      run(cs, "Let me think about it.</think>\n\nThe answer is 4.", engine::FinishReason::kStop);
  EXPECT_EQ(total.reasoning_content, "Let me think about it.");
  EXPECT_EQ(total.text, "The answer is 4.");
}

TEST(ChoiceStream, ToolCallsAreParsedAndFinishAsToolCalls) {
  ChoiceOptions o;
  o.parse_tool_calls = true;
  o.tool_id_seed = 5;
  ChoiceStream cs(tok(), o, 0);
  const std::string text =
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  o.skip_special_tokens = false;
  ChoiceStream raw(tok(), o, 0);
  auto total = run(raw, text, engine::FinishReason::kStop);
  ASSERT_EQ(total.tool_calls.size(), 1u);
  EXPECT_EQ(total.tool_calls[0].name, "get_weather");
  EXPECT_EQ(total.tool_calls[0].arguments, "{\"city\": \"Paris\"}");
  EXPECT_TRUE(total.tool_calls[0].id.has_value());
  EXPECT_EQ(total.text, "");
  EXPECT_EQ(total.finish_reason, "tool_calls");
}

TEST(ChoiceStream, LogprobsAndTokenIdsFollowTheTokens) {
  ChoiceOptions o;
  o.chat = false;
  o.logprobs = true;
  o.return_token_ids = true;
  ChoiceStream cs(tok(), o, 0);
  auto ids = tok().encode("Hello world", false);
  ASSERT_GE(ids.size(), 2u);
  engine::RequestOutput r = out_of(ids, engine::FinishReason::kLength);
  for (int32_t id : ids)
    r.logprobs.push_back(engine::SampleResult{id, -0.5f, {{id, -0.5f}, {7, -1.5f}}});
  auto d = cs.push(r);
  ASSERT_TRUE(d.logprobs.has_value());
  ASSERT_EQ(d.logprobs->size(), ids.size());
  EXPECT_EQ((*d.logprobs)[0].token, "Hello");
  EXPECT_FLOAT_EQ((*d.logprobs)[0].logprob, -0.5f);
  ASSERT_EQ((*d.logprobs)[0].top.size(), 2u);
  EXPECT_EQ(*d.token_ids, ids);
  EXPECT_EQ(d.text, "Hello world");
}

TEST(ChoiceStream, WorkerErrorIsReported) {
  ChoiceOptions o;
  ChoiceStream cs(tok(), o, 0);
  auto r = out_of({}, engine::FinishReason::kError);
  r.error = "worker w1 failed: missed heartbeats";
  cs.push(r);
  EXPECT_TRUE(cs.finished());
  EXPECT_EQ(cs.error(), "worker w1 failed: missed heartbeats");
}

TEST(ChoiceStream, IdsPastTheTokenizerVocabularyDecodeToNothing) {
  ChoiceOptions o;
  o.chat = false;
  o.logprobs = true;
  ChoiceStream cs(tok(), o, 0);
  auto ids = tok().encode("Hi there", false);
  engine::RequestOutput r = out_of({ids[0], 129250, ids[1]}, engine::FinishReason::kLength);
  for (int32_t id : r.new_tokens) r.logprobs.push_back(engine::SampleResult{id, -1.0f, {}});
  auto d = cs.push(r);
  EXPECT_EQ(d.text, "Hi there");
  ASSERT_EQ(d.logprobs->size(), 3u);
  EXPECT_EQ((*d.logprobs)[1].token, "");
  EXPECT_EQ(cs.completion_tokens(), 3);
}

TEST(ChoiceStream, PartialUtf8IsHeldUntilComplete) {
  ChoiceOptions o;
  o.chat = false;
  ChoiceStream cs(tok(), o, 0);
  int with_content = 0;
  auto total = run(cs, "🎉🎉", engine::FinishReason::kLength, &with_content);
  EXPECT_EQ(total.text, "🎉🎉");
  for (unsigned char c : total.text) (void)c;
}

}  // namespace
}  // namespace wideserve::frontend
