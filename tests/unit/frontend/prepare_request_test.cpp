#include "frontend/prepare_request.h"

#include <gtest/gtest.h>

namespace wideserve::frontend {
namespace {

std::shared_ptr<ModelInfo> model() {
  static std::shared_ptr<ModelInfo> m = [] {
    auto m = std::make_shared<ModelInfo>();
    const std::string dir = std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3";
    m->name = "m";
    m->path = dir;
    m->tokenizer = tokenizer::Tokenizer::from_dir(dir);
    auto src = tokenizer::load_chat_template_source(dir);
    m->special_tokens = src.special_tokens;
    m->chat_template =
        std::make_shared<tokenizer::ChatTemplate>(tokenizer::select_chat_template(src, false));
    m->context_length = 64;
    m->vocab_size = 129280;
    return m;
  }();
  return m;
}

api::ApiError error_of(const std::string& body, api::Endpoint ep) {
  try {
    prepare_request(api::parse_request(body, ep), *model());
  } catch (const api::ApiException& e) {
    return e.error();
  }
  ADD_FAILURE() << "no error for " << body;
  return {};
}

TEST(PrepareRequest, ChatRendersTheTemplateAndTokenizesWithoutExtraSpecials) {
  auto req = api::parse_request(
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":4})",
      api::Endpoint::kChatCompletions);
  auto p = prepare_request(req, *model());
  ASSERT_EQ(p.prompts.size(), 1u);
  nlohmann::ordered_json in = api::chat_template_input(req);
  in.erase("tools");
  const std::string text =
      model()->chat_template->render(tokenizer::hf_chat_context(in, model()->special_tokens));
  EXPECT_EQ(p.prompts[0], model()->tokenizer->encode(text, false));
  EXPECT_EQ(p.params.max_new_tokens, 4);
  EXPECT_TRUE(p.choice.chat);
}

TEST(PrepareRequest, CompletionsMapEveryPromptKindAndSamplingField) {
  auto req = api::parse_request(
      R"({"model":"m","prompt":[[1,2,3],[4,5]],"temperature":0,"top_k":5,"top_p":0.5,"min_p":0.1,
          "seed":7,"n":2,"stop_token_ids":[9],"min_tokens":2,"max_tokens":10,"logprobs":3,
          "ignore_eos":true,"presence_penalty":0.5,"frequency_penalty":-0.5,"repetition_penalty":1.2,
          "stop":["x"]})",
      api::Endpoint::kCompletions);
  auto p = prepare_request(req, *model());
  ASSERT_EQ(p.prompts.size(), 2u);
  EXPECT_EQ(p.prompts[0], (std::vector<int32_t>{1, 2, 3}));
  const auto& s = p.params;
  EXPECT_EQ(s.temperature, 0.0f);
  EXPECT_EQ(s.top_k, 5);
  EXPECT_FLOAT_EQ(s.top_p, 0.5f);
  EXPECT_FLOAT_EQ(s.min_p, 0.1f);
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.n, 2);
  EXPECT_EQ(s.stop_token_ids, std::vector<int32_t>{9});
  EXPECT_EQ(s.min_new_tokens, 2);
  EXPECT_EQ(s.max_new_tokens, 10);
  EXPECT_EQ(s.top_logprobs, 3);
  EXPECT_TRUE(s.ignore_eos);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.2f);
  EXPECT_EQ(p.choice.stop, std::vector<std::string>{"x"});
  EXPECT_FALSE(p.choice.chat);
  auto text = prepare_request(
      api::parse_request(R"({"model":"m","prompt":"Hello"})", api::Endpoint::kCompletions),
      *model());
  EXPECT_EQ(text.prompts[0], model()->tokenizer->encode("Hello", true));
  // No max_tokens: the rest of the context.
  EXPECT_EQ(text.params.max_new_tokens, 64 - static_cast<int32_t>(text.prompts[0].size()));
  EXPECT_EQ(text.params.top_logprobs, -1);
}

TEST(PrepareRequest, LimitsAreBadRequestsNamingTheField) {
  auto e =
      error_of(R"({"model":"m","prompt":[1,2,3],"max_tokens":62})", api::Endpoint::kCompletions);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("maximum context length is 64"), std::string::npos);
  std::string long_prompt = "[";
  for (int i = 0; i < 64; ++i) long_prompt += (i ? ",5" : "5");
  long_prompt += "]";
  e = error_of(R"({"model":"m","prompt":)" + long_prompt + "}", api::Endpoint::kCompletions);
  EXPECT_EQ(e.param, "prompt");
  e = error_of(R"({"model":"m","prompt":[129280]})", api::Endpoint::kCompletions);
  EXPECT_NE(e.message.find("outside the vocabulary"), std::string::npos);
  e = error_of(R"({"model":"m","messages":[{"role":"user","content":"a"}],
                  "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"})",
               api::Endpoint::kChatCompletions);
  EXPECT_EQ(e.param, "tool_choice");
}

TEST(PrepareRequest, ModelWithoutChatTemplateRejectsChat) {
  auto m = std::make_shared<ModelInfo>(*model());
  m->chat_template.reset();
  try {
    prepare_request(
        api::parse_request(R"({"model":"m","messages":[{"role":"user","content":"a"}]})",
                           api::Endpoint::kChatCompletions),
        *m);
    FAIL();
  } catch (const api::ApiException& e) {
    EXPECT_EQ(e.error().status, 400);
    EXPECT_NE(e.error().message.find("no chat template"), std::string::npos);
  }
}

TEST(PrepareRequest, ContinueFinalMessageCutsAfterItsContent) {
  auto req = api::parse_request(
      R"({"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Sure, the"}],
          "continue_final_message":true,"add_generation_prompt":false})",
      api::Endpoint::kChatCompletions);
  auto p = prepare_request(req, *model());
  const std::string text = model()->tokenizer->decode(p.prompts[0], false);
  EXPECT_EQ(text.substr(text.size() - 9), "Sure, the");
}

}  // namespace
}  // namespace wideserve::frontend
