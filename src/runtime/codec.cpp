#include "runtime/codec.h"

#include <msgpack.hpp>

#include <limits>
#include <type_traits>

#include "common/check.h"

namespace wideserve::runtime {
namespace {

// msgpack::packer sink appending to a std::string.
struct StringSink {
  std::string* out;
  void write(const char* data, size_t n) { out->append(data, n); }
};
using Packer = msgpack::packer<StringSink>;

void pack_tokens(Packer& p, const std::vector<int32_t>& v) {
  p.pack_array(static_cast<uint32_t>(v.size()));
  for (int32_t t : v) p.pack_int32(t);
}

void pack_str(Packer& p, const std::string& s) {
  p.pack_str(static_cast<uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// SamplingParams: 14 fields.
void pack_params(Packer& p, const engine::SamplingParams& s) {
  p.pack_array(14);
  p.pack_float(s.temperature);
  p.pack_int32(s.top_k);
  p.pack_float(s.top_p);
  p.pack_float(s.min_p);
  p.pack_float(s.presence_penalty);
  p.pack_float(s.frequency_penalty);
  p.pack_float(s.repetition_penalty);
  if (s.seed)
    p.pack_uint64(*s.seed);
  else
    p.pack_nil();
  p.pack_int32(s.max_new_tokens);
  p.pack_int32(s.min_new_tokens);
  if (s.ignore_eos)
    p.pack_true();
  else
    p.pack_false();
  pack_tokens(p, s.stop_token_ids);
  p.pack_int32(s.top_logprobs);
  p.pack_int32(s.n);
}

// SampleResult: [token, logprob, [[token, logprob]...]].
void pack_sample(Packer& p, const engine::SampleResult& r) {
  p.pack_array(3);
  p.pack_int32(r.token);
  p.pack_float(r.logprob);
  p.pack_array(static_cast<uint32_t>(r.top.size()));
  for (const auto& t : r.top) {
    p.pack_array(2);
    p.pack_int32(t.token);
    p.pack_float(t.logprob);
  }
}

// RequestOutput: 10 fields.
void pack_output(Packer& p, const engine::RequestOutput& o) {
  p.pack_array(10);
  p.pack_uint64(o.id);
  p.pack_int32(o.index);
  pack_tokens(p, o.new_tokens);
  p.pack_array(static_cast<uint32_t>(o.logprobs.size()));
  for (const auto& s : o.logprobs) pack_sample(p, s);
  p.pack_uint8(static_cast<uint8_t>(o.finish));
  p.pack_int32(o.matched_stop_token);
  p.pack_int64(o.prompt_tokens);
  p.pack_int64(o.cached_tokens);
  p.pack_int64(o.completion_tokens);
  pack_str(p, o.error);
}

// WorkerInfo: 16 fields.
void pack_info(Packer& p, const WorkerInfo& w) {
  p.pack_array(16);
  pack_str(p, w.instance_id);
  pack_str(p, w.model_name);
  pack_str(p, w.model_path);
  pack_str(p, w.endpoint);
  p.pack_uint8(static_cast<uint8_t>(w.role));
  p.pack_int64(w.context_length);
  p.pack_int64(w.page_size);
  p.pack_int64(w.kv_capacity_tokens);
  p.pack_int64(w.vocab_size);
  p.pack_int32(w.dp_size);
  pack_str(p, w.reasoning_parser);
  pack_str(p, w.tool_call_parser);
  pack_str(p, w.bootstrap_host);
  p.pack_int32(w.bootstrap_port);
  pack_str(p, w.kv_events_endpoint);
  pack_str(p, w.kv_state_endpoint);
}

// EpStats: 7 fields.
void pack_ep(Packer& p, const engine::EpStats& e) {
  p.pack_array(7);
  p.pack_int32(e.ranks);
  pack_tokens(p, e.layers);
  p.pack_array(static_cast<uint32_t>(e.layer_imbalance.size()));
  for (double x : e.layer_imbalance) p.pack_double(x);
  p.pack_int64(e.forwards);
  p.pack_int64(e.tokens_dispatched);
  p.pack_int64(e.bytes_moved);
  p.pack_int64(e.rebalances);
}

// WorkerLoad: 7 fields.
void pack_load(Packer& p, const WorkerLoad& l) {
  p.pack_array(7);
  p.pack_int64(l.running);
  p.pack_int64(l.waiting);
  p.pack_int64(l.kv_pages_total);
  p.pack_int64(l.kv_pages_used);
  p.pack_int64(l.generated_tokens);
  p.pack_int64(l.kv_pages_active);
  pack_ep(p, l.ep);
}

void pack_bool(Packer& p, bool b) {
  if (b)
    p.pack_true();
  else
    p.pack_false();
}

void pack_body(Packer& p, const GenerateRequest& m) {
  p.pack_array(9);
  p.pack_uint64(m.request_id);
  pack_tokens(p, m.token_ids);
  pack_params(p, m.params);
  p.pack_int32(m.sample_index);
  pack_str(p, m.disagg.bootstrap_host);
  p.pack_int32(m.disagg.bootstrap_port);
  p.pack_uint64(m.disagg.bootstrap_room);
  p.pack_int32(m.resumed_tokens);
  p.pack_int32(m.dp_rank);
}
void pack_body(Packer& p, const AbortRequest& m) {
  p.pack_array(1);
  p.pack_uint64(m.request_id);
}
void pack_body(Packer& p, const GenerateOutput& m) {
  p.pack_array(1);
  pack_output(p, m.output);
}
void pack_body(Packer& p, const Heartbeat& m) {
  p.pack_array(3);
  pack_info(p, m.info);
  pack_load(p, m.load);
  pack_bool(p, m.draining);
}
void pack_body(Packer& p, const HeartbeatAck& m) {
  p.pack_array(2);
  pack_bool(p, m.accepted);
  pack_str(p, m.error);
}
void pack_body(Packer& p, const Unregister& m) {
  p.pack_array(1);
  pack_str(p, m.instance_id);
}

// Walks one msgpack array field by field; every mismatch is Error(kDataLoss) naming the field.
class Reader {
 public:
  Reader(const msgpack::object& o, const char* what, size_t min_fields) : what_(what) {
    WS_CHECK_CODE(kDataLoss, o.type == msgpack::type::ARRAY, "malformed {}: not an array", what);
    items_ = o.via.array.ptr;
    size_ = o.via.array.size;
    WS_CHECK_CODE(kDataLoss, size_ >= min_fields, "malformed {}: {} fields, expected {}", what,
                  size_, min_fields);
  }

  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }

  const msgpack::object& next(const char* field) {
    WS_CHECK_CODE(kDataLoss, pos_ < size_, "malformed {}: missing {}", what_, field);
    return items_[pos_++];
  }

  template <typename T>
  T integer(const char* field) {
    static_assert(std::is_integral_v<T>);
    const msgpack::object& o = next(field);
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
      WS_CHECK_CODE(kDataLoss, o.via.u64 <= static_cast<uint64_t>(std::numeric_limits<T>::max()),
                    "malformed {}.{}: {} out of range", what_, field, o.via.u64);
      return static_cast<T>(o.via.u64);
    }
    if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      if constexpr (std::is_signed_v<T>) {
        WS_CHECK_CODE(kDataLoss, o.via.i64 >= static_cast<int64_t>(std::numeric_limits<T>::min()),
                      "malformed {}.{}: {} out of range", what_, field, o.via.i64);
        return static_cast<T>(o.via.i64);
      }
    }
    WS_THROW(kDataLoss, "malformed {}.{}: expected {} integer", what_, field,
             std::is_signed_v<T> ? "a" : "a non-negative");
  }

  float f32(const char* field) {
    const msgpack::object& o = next(field);
    if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64)
      return static_cast<float>(o.via.f64);
    if (o.type == msgpack::type::POSITIVE_INTEGER) return static_cast<float>(o.via.u64);
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return static_cast<float>(o.via.i64);
    WS_THROW(kDataLoss, "malformed {}.{}: expected a number", what_, field);
  }

  double f64(const char* field) {
    const msgpack::object& o = next(field);
    if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64)
      return static_cast<double>(o.via.f64);
    if (o.type == msgpack::type::POSITIVE_INTEGER) return static_cast<double>(o.via.u64);
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return static_cast<double>(o.via.i64);
    WS_THROW(kDataLoss, "malformed {}.{}: expected a number", what_, field);
  }

  bool boolean(const char* field) {
    const msgpack::object& o = next(field);
    WS_CHECK_CODE(kDataLoss, o.type == msgpack::type::BOOLEAN, "malformed {}.{}: expected a bool",
                  what_, field);
    return o.via.boolean;
  }

  std::string str(const char* field) {
    const msgpack::object& o = next(field);
    WS_CHECK_CODE(kDataLoss, o.type == msgpack::type::STR, "malformed {}.{}: expected a string",
                  what_, field);
    return std::string(o.via.str.ptr, o.via.str.size);
  }

  std::vector<int32_t> tokens(const char* field) {
    Reader a(next(field), field, 0);
    std::vector<int32_t> v;
    v.reserve(a.size());
    while (a.remaining() > 0) v.push_back(a.integer<int32_t>("token"));
    return v;
  }

  bool next_is_nil() const { return pos_ < size_ && items_[pos_].type == msgpack::type::NIL; }

 private:
  const char* what_;
  const msgpack::object* items_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
};

engine::SamplingParams read_params(const msgpack::object& o) {
  Reader r(o, "SamplingParams", 14);
  engine::SamplingParams s;
  s.temperature = r.f32("temperature");
  s.top_k = r.integer<int32_t>("top_k");
  s.top_p = r.f32("top_p");
  s.min_p = r.f32("min_p");
  s.presence_penalty = r.f32("presence_penalty");
  s.frequency_penalty = r.f32("frequency_penalty");
  s.repetition_penalty = r.f32("repetition_penalty");
  if (r.next_is_nil())
    r.next("seed");
  else
    s.seed = r.integer<uint64_t>("seed");
  s.max_new_tokens = r.integer<int32_t>("max_new_tokens");
  s.min_new_tokens = r.integer<int32_t>("min_new_tokens");
  s.ignore_eos = r.boolean("ignore_eos");
  s.stop_token_ids = r.tokens("stop_token_ids");
  s.top_logprobs = r.integer<int32_t>("top_logprobs");
  s.n = r.integer<int32_t>("n");
  return s;
}

engine::SampleResult read_sample(const msgpack::object& o) {
  Reader r(o, "SampleResult", 3);
  engine::SampleResult s;
  s.token = r.integer<int32_t>("token");
  s.logprob = r.f32("logprob");
  Reader top(r.next("top"), "SampleResult.top", 0);
  s.top.reserve(top.size());
  while (top.remaining() > 0) {
    Reader t(top.next("entry"), "TokenLogprob", 2);
    engine::TokenLogprob tl;
    tl.token = t.integer<int32_t>("token");
    tl.logprob = t.f32("logprob");
    s.top.push_back(tl);
  }
  return s;
}

engine::RequestOutput read_output(const msgpack::object& o) {
  Reader r(o, "RequestOutput", 10);
  engine::RequestOutput out;
  out.id = r.integer<uint64_t>("id");
  out.index = r.integer<int32_t>("index");
  out.new_tokens = r.tokens("new_tokens");
  Reader lp(r.next("logprobs"), "RequestOutput.logprobs", 0);
  out.logprobs.reserve(lp.size());
  while (lp.remaining() > 0) out.logprobs.push_back(read_sample(lp.next("entry")));
  uint8_t finish = r.integer<uint8_t>("finish");
  WS_CHECK_CODE(kDataLoss, finish <= static_cast<uint8_t>(engine::FinishReason::kError),
                "malformed RequestOutput.finish: unknown value {}", finish);
  out.finish = static_cast<engine::FinishReason>(finish);
  out.matched_stop_token = r.integer<int32_t>("matched_stop_token");
  out.prompt_tokens = r.integer<int64_t>("prompt_tokens");
  out.cached_tokens = r.integer<int64_t>("cached_tokens");
  out.completion_tokens = r.integer<int64_t>("completion_tokens");
  out.error = r.str("error");
  return out;
}

WorkerInfo read_info(const msgpack::object& o) {
  Reader r(o, "WorkerInfo", 14);
  WorkerInfo w;
  w.instance_id = r.str("instance_id");
  w.model_name = r.str("model_name");
  w.model_path = r.str("model_path");
  w.endpoint = r.str("endpoint");
  uint8_t role = r.integer<uint8_t>("role");
  WS_CHECK_CODE(kDataLoss, role <= static_cast<uint8_t>(WorkerRole::kDecode),
                "malformed WorkerInfo.role: unknown value {}", role);
  w.role = static_cast<WorkerRole>(role);
  w.context_length = r.integer<int64_t>("context_length");
  w.page_size = r.integer<int64_t>("page_size");
  w.kv_capacity_tokens = r.integer<int64_t>("kv_capacity_tokens");
  w.vocab_size = r.integer<int64_t>("vocab_size");
  w.dp_size = r.integer<int32_t>("dp_size");
  w.reasoning_parser = r.str("reasoning_parser");
  w.tool_call_parser = r.str("tool_call_parser");
  w.bootstrap_host = r.str("bootstrap_host");
  w.bootstrap_port = r.integer<int32_t>("bootstrap_port");
  if (r.remaining() >= 2) {  // appended for KV routing; older workers publish no KV events
    w.kv_events_endpoint = r.str("kv_events_endpoint");
    w.kv_state_endpoint = r.str("kv_state_endpoint");
  }
  return w;
}

engine::EpStats read_ep(const msgpack::object& o) {
  Reader r(o, "EpStats", 7);
  engine::EpStats e;
  e.ranks = r.integer<int32_t>("ranks");
  e.layers = r.tokens("layers");
  Reader imb(r.next("layer_imbalance"), "EpStats.layer_imbalance", 0);
  while (imb.remaining() > 0) e.layer_imbalance.push_back(imb.f64("imbalance"));
  WS_CHECK_CODE(kDataLoss, e.layer_imbalance.empty() || e.layer_imbalance.size() == e.layers.size(),
                "malformed EpStats: {} layers, {} imbalance values", e.layers.size(),
                e.layer_imbalance.size());
  e.forwards = r.integer<int64_t>("forwards");
  e.tokens_dispatched = r.integer<int64_t>("tokens_dispatched");
  e.bytes_moved = r.integer<int64_t>("bytes_moved");
  e.rebalances = r.integer<int64_t>("rebalances");
  return e;
}

WorkerLoad read_load(const msgpack::object& o) {
  Reader r(o, "WorkerLoad", 5);
  WorkerLoad l;
  l.running = r.integer<int64_t>("running");
  l.waiting = r.integer<int64_t>("waiting");
  l.kv_pages_total = r.integer<int64_t>("kv_pages_total");
  l.kv_pages_used = r.integer<int64_t>("kv_pages_used");
  l.generated_tokens = r.integer<int64_t>("generated_tokens");
  if (r.remaining() > 0) l.kv_pages_active = r.integer<int64_t>("kv_pages_active");
  if (r.remaining() > 0) l.ep = read_ep(r.next("ep"));  // appended for wide EP
  return l;
}

Message read_body(MessageType type, const msgpack::object& body) {
  switch (type) {
    case MessageType::kGenerateRequest: {
      Reader r(body, "GenerateRequest", 3);
      GenerateRequest m;
      m.request_id = r.integer<uint64_t>("request_id");
      m.token_ids = r.tokens("token_ids");
      m.params = read_params(r.next("params"));
      // Fields added after the first release are optional on the wire.
      if (r.remaining() >= 4) {
        m.sample_index = r.integer<int32_t>("sample_index");
        m.disagg.bootstrap_host = r.str("bootstrap_host");
        m.disagg.bootstrap_port = r.integer<int32_t>("bootstrap_port");
        m.disagg.bootstrap_room = r.integer<uint64_t>("bootstrap_room");
      }
      if (r.remaining() >= 1) m.resumed_tokens = r.integer<int32_t>("resumed_tokens");
      if (r.remaining() >= 1) m.dp_rank = r.integer<int32_t>("dp_rank");
      return m;
    }
    case MessageType::kAbortRequest: {
      Reader r(body, "AbortRequest", 1);
      return AbortRequest{r.integer<uint64_t>("request_id")};
    }
    case MessageType::kGenerateOutput: {
      Reader r(body, "GenerateOutput", 1);
      return GenerateOutput{read_output(r.next("output"))};
    }
    case MessageType::kHeartbeat: {
      Reader r(body, "Heartbeat", 3);
      Heartbeat m;
      m.info = read_info(r.next("info"));
      m.load = read_load(r.next("load"));
      m.draining = r.boolean("draining");
      return m;
    }
    case MessageType::kHeartbeatAck: {
      Reader r(body, "HeartbeatAck", 2);
      HeartbeatAck m;
      m.accepted = r.boolean("accepted");
      m.error = r.str("error");
      return m;
    }
    case MessageType::kUnregister: {
      Reader r(body, "Unregister", 1);
      return Unregister{r.str("instance_id")};
    }
  }
  WS_THROW(kDataLoss, "unknown message type {}", static_cast<int>(type));
}

// Decodes the frame starting at data[off], advancing off past it.
Message decode_one(std::string_view data, size_t& off) {
  // Limits bound what garbage can make the parser allocate: no container can hold more
  // elements than there are bytes left.
  const size_t n = data.size();
  msgpack::unpack_limit limit(n, n / 2 + 1, n, n, n, 16);
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(
        data.data(), data.size(), off,
        [](msgpack::type::object_type, size_t, void*) { return true; }, nullptr, limit);
  } catch (const std::exception& e) {
    WS_THROW(kDataLoss, "undecodable frame ({} bytes at offset {}): {}", n, off, e.what());
  }
  const msgpack::object& o = h.get();
  WS_CHECK_CODE(kDataLoss, o.type == msgpack::type::ARRAY && o.via.array.size >= 1,
                "undecodable frame: not a versioned message");
  const msgpack::object& ver = o.via.array.ptr[0];
  WS_CHECK_CODE(kDataLoss, ver.type == msgpack::type::POSITIVE_INTEGER,
                "undecodable frame: no protocol version");
  WS_CHECK_CODE(kDataLoss, ver.via.u64 == kProtocolVersion,
                "protocol version {} from peer, expected {}", ver.via.u64, kProtocolVersion);
  Reader r(o, "frame", 3);
  r.next("version");
  uint8_t tag = r.integer<uint8_t>("type");
  WS_CHECK_CODE(kDataLoss,
                tag >= static_cast<uint8_t>(MessageType::kGenerateRequest) &&
                    tag <= static_cast<uint8_t>(MessageType::kUnregister),
                "unknown message type {}", tag);
  return read_body(static_cast<MessageType>(tag), r.next("body"));
}

}  // namespace

MessageType message_type(const Message& m) {
  return std::visit(
      [](const auto& v) -> MessageType {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, GenerateRequest>) return MessageType::kGenerateRequest;
        if constexpr (std::is_same_v<T, AbortRequest>) return MessageType::kAbortRequest;
        if constexpr (std::is_same_v<T, GenerateOutput>) return MessageType::kGenerateOutput;
        if constexpr (std::is_same_v<T, Heartbeat>) return MessageType::kHeartbeat;
        if constexpr (std::is_same_v<T, HeartbeatAck>) return MessageType::kHeartbeatAck;
        if constexpr (std::is_same_v<T, Unregister>) return MessageType::kUnregister;
      },
      m);
}

const char* message_type_name(MessageType t) {
  switch (t) {
    case MessageType::kGenerateRequest:
      return "GenerateRequest";
    case MessageType::kAbortRequest:
      return "AbortRequest";
    case MessageType::kGenerateOutput:
      return "GenerateOutput";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatAck:
      return "HeartbeatAck";
    case MessageType::kUnregister:
      return "Unregister";
  }
  return "unknown";
}

void encode_append(const Message& m, std::string& out) {
  StringSink sink{&out};
  Packer p(sink);
  p.pack_array(3);
  p.pack_uint32(kProtocolVersion);
  p.pack_uint8(static_cast<uint8_t>(message_type(m)));
  std::visit([&](const auto& v) { pack_body(p, v); }, m);
}

std::string encode(const Message& m) {
  std::string out;
  encode_append(m, out);
  return out;
}

Message decode(std::string_view frame) {
  WS_CHECK_CODE(kDataLoss, !frame.empty(), "undecodable frame: empty");
  size_t off = 0;
  Message m = decode_one(frame, off);
  WS_CHECK_CODE(kDataLoss, off == frame.size(), "undecodable frame: {} trailing bytes",
                frame.size() - off);
  return m;
}

std::vector<Message> decode_all(std::string_view data) {
  WS_CHECK_CODE(kDataLoss, !data.empty(), "undecodable frame: empty");
  std::vector<Message> out;
  size_t off = 0;
  while (off < data.size()) out.push_back(decode_one(data, off));
  return out;
}

}  // namespace wideserve::runtime
