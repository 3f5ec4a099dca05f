// Random mutations of valid bodies: parse_request accepts them or throws ApiException(400) whose
// error_body is valid JSON; nothing else ever escapes.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "api/openai_request.h"

namespace wideserve::api {
namespace {

using Json = nlohmann::ordered_json;

const char* kChatBody = R"({"model":"m","messages":[{"role":"system","content":"s"},
  {"role":"user","content":[{"type":"text","text":"h\u00e9"}]},
  {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function",
   "function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"1","tool_call_id":"c"}],
  "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
  "tool_choice":"auto","max_tokens":16,"temperature":0.5,"top_p":0.9,"top_k":5,"min_p":0.1,
  "n":2,"seed":-3,"stop":["x"],"stop_token_ids":[1],"presence_penalty":0.1,
  "frequency_penalty":0.1,"repetition_penalty":1.1,"logprobs":true,"top_logprobs":2,
  "ignore_eos":false,"min_tokens":1,"stream":true,"stream_options":{"include_usage":true},
  "return_token_ids":true,"nvext":{"greed_sampling":false},"response_format":{"type":"text"}})";

const char* kCompletionBody = R"({"model":"m","prompt":[[1,2],[3]],"max_tokens":4,"logprobs":2,
  "echo":false,"best_of":1,"stop":"y","seed":5,"suffix":null})";

// Throws nothing but ApiException; checks the error when it throws.
void check(const std::string& body, Endpoint ep) {
  try {
    parse_request(body, ep);
  } catch (const ApiException& e) {
    ASSERT_EQ(e.error().status, 400);
    ASSERT_FALSE(e.error().message.empty());
    ASSERT_TRUE(nlohmann::json::accept(error_body(e.error())));
  } catch (const std::exception& e) {
    FAIL() << "unexpected exception " << e.what() << " for body: " << body;
  } catch (...) {
    FAIL() << "unexpected non-std exception for body: " << body;
  }
}

std::string mutate_bytes(std::string s, std::mt19937& rng) {
  int edits = 1 + static_cast<int>(rng() % 4);
  static const char kInteresting[] = "{}[]\",:0-9.eE\\nulltruefalse \xff\xc3\x80";
  for (int i = 0; i < edits && !s.empty(); ++i) {
    size_t pos = rng() % s.size();
    switch (rng() % 5) {
      case 0:
        s[pos] = static_cast<char>(rng());
        break;
      case 1:
        s[pos] = kInteresting[rng() % (sizeof(kInteresting) - 1)];
        break;
      case 2:
        s.erase(pos, 1 + rng() % 8);
        break;
      case 3:
        s.insert(pos, 1, kInteresting[rng() % (sizeof(kInteresting) - 1)]);
        break;
      default:
        s.resize(pos);
        break;
    }
  }
  return s;
}

Json random_value(std::mt19937& rng) {
  switch (rng() % 10) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<int64_t>(rng()) - (1ll << 31);
    case 3:
      return static_cast<double>(rng()) / 1e9 - 2.0;
    case 4:
      return "s";
    case 5:
      return Json::array({1, "a"});
    case 6:
      return Json::object({{"type", "text"}, {"text", "t"}});
    case 7:
      return Json::array();
    case 8:
      return 18446744073709551615ull;
    default:
      return -1e300;
  }
}

// Replaces a random value somewhere in the tree with a random value of any type.
void mutate_tree(Json& j, std::mt19937& rng, int depth = 0) {
  if ((!j.is_object() && !j.is_array()) || j.empty() || depth > 5 || rng() % 3 == 0) {
    j = random_value(rng);
    return;
  }
  size_t i = rng() % j.size();
  auto it = j.begin();
  std::advance(it, static_cast<long>(i));
  if (j.is_object() && rng() % 8 == 0) {
    j.erase(it);  // drop a key
    return;
  }
  mutate_tree(*it, rng, depth + 1);
}

TEST(RequestFuzz, ValidBodiesParse) {
  EXPECT_NO_THROW(parse_request(kChatBody, Endpoint::kChatCompletions));
  EXPECT_NO_THROW(parse_request(kCompletionBody, Endpoint::kCompletions));
}

TEST(RequestFuzz, ByteMutationsOnlyThrowApiException) {
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 8000; ++iter) {
    bool chat = iter % 2 == 0;
    std::string body = mutate_bytes(chat ? kChatBody : kCompletionBody, rng);
    check(body, chat ? Endpoint::kChatCompletions : Endpoint::kCompletions);
    // The same body sent to the other endpoint.
    check(body, chat ? Endpoint::kCompletions : Endpoint::kChatCompletions);
  }
}

TEST(RequestFuzz, TreeMutationsOnlyThrowApiException) {
  std::mt19937 rng(777);
  const Json chat = Json::parse(kChatBody);
  const Json cmpl = Json::parse(kCompletionBody);
  int accepted = 0;
  for (int iter = 0; iter < 8000; ++iter) {
    bool is_chat = iter % 2 == 0;
    Json j = is_chat ? chat : cmpl;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) mutate_tree(j, rng);
    std::string body = j.dump();
    Endpoint ep = is_chat ? Endpoint::kChatCompletions : Endpoint::kCompletions;
    check(body, ep);
    try {
      parse_request(body, ep);
      ++accepted;
    } catch (const ApiException&) {
    }
  }
  // Mutations hit both sides of the validation.
  EXPECT_GT(accepted, 100);
  EXPECT_LT(accepted, 7600);
}

}  // namespace
}  // namespace wideserve::api
