#include "runtime/codec.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <random>

#include "common/check.h"

namespace wideserve::runtime {
namespace {

engine::SamplingParams full_params() {
  engine::SamplingParams p;
  p.temperature = 0.7f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = -0.25f;
  p.repetition_penalty = 1.1f;
  p.seed = 0xfedcba9876543210ULL;
  p.max_new_tokens = 1234;
  p.min_new_tokens = 7;
  p.ignore_eos = true;
  p.stop_token_ids = {1, 2, 128000};
  p.top_logprobs = 3;
  p.n = 4;
  return p;
}

engine::RequestOutput full_output() {
  engine::RequestOutput o;
  o.id = 0x1234567890abcdefULL;
  o.index = 3;
  o.new_tokens = {17, -1, 2147483647};
  for (int i = 0; i < 3; ++i) {
    engine::SampleResult s;
    s.token = o.new_tokens[i];
    s.logprob = -0.5f * static_cast<float>(i + 1);
    for (int k = 0; k < 3; ++k) s.top.push_back({100 + k, -1.0f - static_cast<float>(k)});
    o.logprobs.push_back(s);
  }
  o.finish = engine::FinishReason::kLength;
  o.matched_stop_token = 128001;
  o.prompt_tokens = 5000000000LL;
  o.cached_tokens = 4096;
  o.completion_tokens = 3;
  o.error = "something \xe2\x9c\x93 happened";
  return o;
}

WorkerInfo full_info() {
  WorkerInfo w;
  w.instance_id = "host:123:abcd";
  w.model_name = "deepseek-ai/DeepSeek-R1";
  w.model_path = "/models/r1";
  w.endpoint = "tcp://10.0.0.5:41231";
  w.role = WorkerRole::kDecode;
  w.context_length = 163840;
  w.page_size = 64;
  w.kv_capacity_tokens = 1 << 20;
  w.vocab_size = 129280;
  w.dp_size = 8;
  w.reasoning_parser = "deepseek_r1";
  w.tool_call_parser = "deepseek_v3";
  w.bootstrap_host = "10.0.0.6";
  w.bootstrap_port = 30001;
  w.kv_events_endpoint = "tcp://10.0.0.5:41232";
  w.kv_state_endpoint = "tcp://10.0.0.5:41233";
  return w;
}

void expect_params_eq(const engine::SamplingParams& a, const engine::SamplingParams& b) {
  EXPECT_EQ(a.temperature, b.temperature);
  EXPECT_EQ(a.top_k, b.top_k);
  EXPECT_EQ(a.top_p, b.top_p);
  EXPECT_EQ(a.min_p, b.min_p);
  EXPECT_EQ(a.presence_penalty, b.presence_penalty);
  EXPECT_EQ(a.frequency_penalty, b.frequency_penalty);
  EXPECT_EQ(a.repetition_penalty, b.repetition_penalty);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.max_new_tokens, b.max_new_tokens);
  EXPECT_EQ(a.min_new_tokens, b.min_new_tokens);
  EXPECT_EQ(a.ignore_eos, b.ignore_eos);
  EXPECT_EQ(a.stop_token_ids, b.stop_token_ids);
  EXPECT_EQ(a.top_logprobs, b.top_logprobs);
  EXPECT_EQ(a.n, b.n);
}

void expect_output_eq(const engine::RequestOutput& a, const engine::RequestOutput& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.new_tokens, b.new_tokens);
  ASSERT_EQ(a.logprobs.size(), b.logprobs.size());
  for (size_t i = 0; i < a.logprobs.size(); ++i) {
    EXPECT_EQ(a.logprobs[i].token, b.logprobs[i].token);
    EXPECT_EQ(a.logprobs[i].logprob, b.logprobs[i].logprob);
    ASSERT_EQ(a.logprobs[i].top.size(), b.logprobs[i].top.size());
    for (size_t k = 0; k < a.logprobs[i].top.size(); ++k) {
      EXPECT_EQ(a.logprobs[i].top[k].token, b.logprobs[i].top[k].token);
      EXPECT_EQ(a.logprobs[i].top[k].logprob, b.logprobs[i].top[k].logprob);
    }
  }
  EXPECT_EQ(a.finish, b.finish);
  EXPECT_EQ(a.matched_stop_token, b.matched_stop_token);
  EXPECT_EQ(a.prompt_tokens, b.prompt_tokens);
  EXPECT_EQ(a.cached_tokens, b.cached_tokens);
  EXPECT_EQ(a.completion_tokens, b.completion_tokens);
  EXPECT_EQ(a.error, b.error);
}

void expect_info_eq(const WorkerInfo& a, const WorkerInfo& b) {
  EXPECT_EQ(a.instance_id, b.instance_id);
  EXPECT_EQ(a.model_name, b.model_name);
  EXPECT_EQ(a.model_path, b.model_path);
  EXPECT_EQ(a.endpoint, b.endpoint);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.context_length, b.context_length);
  EXPECT_EQ(a.page_size, b.page_size);
  EXPECT_EQ(a.kv_capacity_tokens, b.kv_capacity_tokens);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.dp_size, b.dp_size);
  EXPECT_EQ(a.reasoning_parser, b.reasoning_parser);
  EXPECT_EQ(a.tool_call_parser, b.tool_call_parser);
  EXPECT_EQ(a.bootstrap_host, b.bootstrap_host);
  EXPECT_EQ(a.bootstrap_port, b.bootstrap_port);
  EXPECT_EQ(a.kv_events_endpoint, b.kv_events_endpoint);
  EXPECT_EQ(a.kv_state_endpoint, b.kv_state_endpoint);
}

template <typename T>
T round_trip(const T& m) {
  Message back = decode(encode(m));
  EXPECT_TRUE(std::holds_alternative<T>(back)) << "type index " << back.index();
  return std::get<T>(back);
}

// Expects decode to fail with kDataLoss and a message containing `needle`.
void expect_data_loss(std::string_view bytes, const std::string& needle = "") {
  try {
    decode(bytes);
    ADD_FAILURE() << "decoded garbage";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Codec, GenerateRequestRoundTrip) {
  GenerateRequest m;
  m.request_id = 0xffffffffffffffffULL;
  m.token_ids = {0, 1, -5, 129279, 2147483647};
  m.params = full_params();
  m.sample_index = 3;
  m.disagg.bootstrap_host = "10.0.0.7";
  m.disagg.bootstrap_port = 30001;
  m.disagg.bootstrap_room = (1ULL << 63) - 5;
  m.resumed_tokens = 2;
  m.dp_rank = 5;
  GenerateRequest b = round_trip(m);
  EXPECT_EQ(b.request_id, m.request_id);
  EXPECT_EQ(b.token_ids, m.token_ids);
  expect_params_eq(b.params, m.params);
  EXPECT_EQ(b.sample_index, 3);
  EXPECT_EQ(b.disagg.bootstrap_host, "10.0.0.7");
  EXPECT_EQ(b.disagg.bootstrap_port, 30001);
  EXPECT_EQ(b.disagg.bootstrap_room, m.disagg.bootstrap_room);
  EXPECT_EQ(b.resumed_tokens, 2);
  EXPECT_EQ(b.dp_rank, 5);
  EXPECT_EQ(message_type(m), MessageType::kGenerateRequest);
}

TEST(Codec, DefaultParamsRoundTripWithoutSeed) {
  GenerateRequest m;
  m.request_id = 7;
  GenerateRequest b = round_trip(m);
  EXPECT_EQ(b.dp_rank, -1);  // no rank chosen: the worker picks
  EXPECT_FALSE(b.params.seed.has_value());
  expect_params_eq(b.params, m.params);
  EXPECT_TRUE(b.token_ids.empty());
}

TEST(Codec, AbortRoundTrip) {
  EXPECT_EQ(round_trip(AbortRequest{42}).request_id, 42u);
}

TEST(Codec, GenerateOutputRoundTrip) {
  GenerateOutput m{full_output()};
  expect_output_eq(round_trip(m).output, m.output);
  for (auto f : {engine::FinishReason::kNone, engine::FinishReason::kStop,
                 engine::FinishReason::kAbort, engine::FinishReason::kError}) {
    m.output.finish = f;
    EXPECT_EQ(round_trip(m).output.finish, f);
  }
}

TEST(Codec, HeartbeatRoundTrip) {
  Heartbeat m;
  m.info = full_info();
  m.load = {3, 4, 1000, 250, 123456789012LL, 200};
  m.draining = true;
  Heartbeat b = round_trip(m);
  expect_info_eq(b.info, m.info);
  EXPECT_EQ(b.load.running, 3);
  EXPECT_EQ(b.load.waiting, 4);
  EXPECT_EQ(b.load.kv_pages_total, 1000);
  EXPECT_EQ(b.load.kv_pages_used, 250);
  EXPECT_EQ(b.load.generated_tokens, 123456789012LL);
  EXPECT_EQ(b.load.kv_pages_active, 200);
  EXPECT_TRUE(b.draining);
  for (auto r : {WorkerRole::kAggregated, WorkerRole::kPrefill}) {
    m.info.role = r;
    EXPECT_EQ(round_trip(m).info.role, r);
  }
}

TEST(Codec, AckAndUnregisterRoundTrip) {
  HeartbeatAck a = round_trip(HeartbeatAck{false, "tokenizer differs"});
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.error, "tokenizer differs");
  EXPECT_TRUE(round_trip(HeartbeatAck{}).accepted);
  EXPECT_EQ(round_trip(Unregister{"host:1:2"}).instance_id, "host:1:2");
}

TEST(Codec, DecodeAllSplitsConcatenatedFrames) {
  std::string buf;
  encode_append(AbortRequest{1}, buf);
  encode_append(GenerateOutput{full_output()}, buf);
  encode_append(Unregister{"x"}, buf);
  std::vector<Message> msgs = decode_all(buf);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(std::get<AbortRequest>(msgs[0]).request_id, 1u);
  expect_output_eq(std::get<GenerateOutput>(msgs[1]).output, full_output());
  EXPECT_EQ(std::get<Unregister>(msgs[2]).instance_id, "x");
  // decode() wants exactly one frame.
  expect_data_loss(buf, "trailing bytes");
}

std::string frame_with(uint64_t version, uint64_t type, int body_fields) {
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> p(sb);
  p.pack_array(3);
  p.pack_uint64(version);
  p.pack_uint64(type);
  p.pack_array(body_fields);
  for (int i = 0; i < body_fields; ++i) p.pack_uint64(5);
  return std::string(sb.data(), sb.size());
}

TEST(Codec, WrongVersionIsDataLossNamingBoth) {
  expect_data_loss(frame_with(2, 2, 1), "protocol version 2 from peer, expected 1");
  // The version is checked before anything else of the frame.
  std::string v9 = encode(AbortRequest{1});
  v9[1] = 9;  // [fixarray3, positive fixint version, ...]
  expect_data_loss(v9, "protocol version 9 from peer, expected 1");
}

TEST(Codec, UnknownTypeAndBadFieldsAreDataLoss) {
  EXPECT_NO_THROW(decode(frame_with(kProtocolVersion, 2, 1)));
  expect_data_loss(frame_with(kProtocolVersion, 99, 1), "unknown message type 99");
  expect_data_loss(frame_with(kProtocolVersion, 0, 1), "unknown message type 0");
  expect_data_loss(frame_with(kProtocolVersion, 2, 0), "malformed AbortRequest");
  // Extra trailing fields from a newer peer are ignored.
  EXPECT_EQ(std::get<AbortRequest>(decode(frame_with(kProtocolVersion, 2, 3))).request_id, 5u);
  // Wrong field types.
  expect_data_loss(frame_with(kProtocolVersion, 6, 1), "Unregister.instance_id");
  expect_data_loss(frame_with(kProtocolVersion, 5, 2), "HeartbeatAck.accepted");
  // Out-of-range enum.
  GenerateOutput o{full_output()};
  std::string bytes = encode(o);
  Message ok = decode(bytes);
  (void)ok;
  {
    msgpack::sbuffer sb;
    msgpack::packer<msgpack::sbuffer> p(sb);
    p.pack_array(3);
    p.pack_uint32(kProtocolVersion);
    p.pack_uint8(3);
    p.pack_array(1);
    p.pack_array(10);
    p.pack_uint64(1);
    p.pack_int32(0);
    p.pack_array(0);
    p.pack_array(0);
    p.pack_uint8(200);  // finish
    p.pack_int32(-1);
    p.pack_int64(0);
    p.pack_int64(0);
    p.pack_int64(0);
    p.pack_str(0);
    p.pack_str_body("", 0);
    expect_data_loss(std::string(sb.data(), sb.size()), "finish: unknown value 200");
  }
  // Negative where unsigned, and int32 overflow.
  {
    msgpack::sbuffer sb;
    msgpack::packer<msgpack::sbuffer> p(sb);
    p.pack_array(3);
    p.pack_uint32(kProtocolVersion);
    p.pack_uint8(2);
    p.pack_array(1);
    p.pack_int64(-3);
    expect_data_loss(std::string(sb.data(), sb.size()), "AbortRequest.request_id");
  }
}

TEST(Codec, GarbageNeverCrashes) {
  expect_data_loss("", "empty");
  expect_data_loss("hello world");
  expect_data_loss(std::string("\xdd\xff\xff\xff\xff", 5));  // array32 claiming 4G elements
  expect_data_loss(std::string("\xdb\xff\xff\xff\xff", 5));  // str32 claiming 4 GiB
  expect_data_loss(std::string("\xc1", 1));                  // never-used byte
  expect_data_loss(std::string(200, '\x91'));                // deep nesting
  // Every truncation of a valid frame.
  Heartbeat hb{full_info(), {1, 2, 3, 4, 5}, false};
  std::string good = encode(hb);
  for (size_t n = 0; n < good.size(); ++n) expect_data_loss(good.substr(0, n));
  // Random bit flips and random buffers: either decodes or throws kDataLoss, nothing else.
  std::mt19937 rng(1234);
  std::string out_frame = encode(GenerateOutput{full_output()});
  int decoded = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string buf;
    if (iter % 2 == 0) {
      buf = iter % 4 == 0 ? good : out_frame;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f)
        buf[rng() % buf.size()] ^= static_cast<char>(1 << (rng() % 8));
    } else {
      buf.resize(1 + rng() % 64);
      for (char& c : buf) c = static_cast<char>(rng());
    }
    try {
      decode_all(buf);
      ++decoded;
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
    }
  }
  EXPECT_LT(decoded, 4000);
}

TEST(Codec, TypeNames) {
  EXPECT_STREQ(message_type_name(MessageType::kHeartbeat), "Heartbeat");
  EXPECT_STREQ(message_type_name(static_cast<MessageType>(77)), "unknown");
}

}  // namespace
}  // namespace wideserve::runtime
