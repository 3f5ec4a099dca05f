#include "runtime/kv_events.h"

#include <msgpack.hpp>

#include <limits>

#include "common/check.h"

namespace wideserve::runtime {
namespace {

struct StringSink {
  std::string* out;
  void write(const char* data, size_t n) { out->append(data, n); }
};
using Packer = msgpack::packer<StringSink>;

// Every message is an array whose first item is kKvWireVersion; pack_rest(p) packs the other
// `items - 1` items.
template <typename F>
std::string encode_message(uint32_t items, F pack_rest) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  p.pack_array(items);
  p.pack_uint32(kKvWireVersion);
  pack_rest(p);
  return out;
}

void pack_hashes(Packer& p, const std::vector<uint64_t>& hashes) {
  p.pack_array(static_cast<uint32_t>(hashes.size()));
  for (uint64_t h : hashes) p.pack_uint64(h);
}

// Unpacks one whole frame; keeps the zone alive with the handle.
msgpack::object_handle unpack(std::string_view frame, const char* what) {
  msgpack::object_handle h;
  size_t off = 0;
  try {
    // No container can hold more elements than there are bytes: garbage cannot allocate much.
    const size_t n = frame.size();
    msgpack::unpack_limit limit(n, n / 2 + 1, n, n, n, 8);
    h = msgpack::unpack(
        frame.data(), frame.size(), off,
        [](msgpack::type::object_type, size_t, void*) { return true; }, nullptr, limit);
  } catch (const std::exception& e) {
    WS_THROW(kDataLoss, "malformed {}: {}", what, e.what());
  }
  WS_CHECK_CODE(kDataLoss, off == frame.size(), "malformed {}: {} trailing bytes", what,
                frame.size() - off);
  return h;
}

const msgpack::object* array_of(const msgpack::object& o, const char* what, size_t min_size) {
  WS_CHECK_CODE(kDataLoss, o.type == msgpack::type::ARRAY && o.via.array.size >= min_size,
                "malformed {}: expected an array of at least {} items", what, min_size);
  return o.via.array.ptr;
}

uint64_t u64(const msgpack::object& o, const char* what) {
  WS_CHECK_CODE(kDataLoss, o.type == msgpack::type::POSITIVE_INTEGER,
                "malformed {}: expected a non-negative integer", what);
  return o.via.u64;
}

int32_t i32(const msgpack::object& o, const char* what) {
  const uint64_t v = u64(o, what);
  WS_CHECK_CODE(kDataLoss, v <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max()),
                "malformed {}: {} out of range", what, v);
  return static_cast<int32_t>(v);
}

void check_version(const msgpack::object& o, const char* what) {
  const uint64_t v = u64(o, what);
  WS_CHECK_CODE(kDataLoss, v == kKvWireVersion, "{} has KV wire version {}, this binary speaks {}",
                what, v, kKvWireVersion);
}

std::vector<uint64_t> hashes(const msgpack::object& o, const char* what) {
  const msgpack::object* items = array_of(o, what, 0);
  std::vector<uint64_t> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) out.push_back(u64(items[i], what));
  return out;
}

// A decoded message: its items (at least the number asked for, the version checked), kept alive
// by the handle.
struct Message {
  msgpack::object_handle handle;
  const msgpack::object* items = nullptr;
};

Message decode_message(std::string_view frame, const char* what, size_t min_items) {
  Message m{unpack(frame, what)};
  m.items = array_of(m.handle.get(), what, min_items);
  check_version(m.items[0], what);
  return m;
}

}  // namespace

std::string encode_kv_event(const KvEvent& e) {
  return encode_message(7, [&](Packer& p) {
    p.pack_uint64(e.event_id);
    p.pack_uint32(static_cast<uint32_t>(e.dp_rank));
    p.pack_uint8(static_cast<uint8_t>(e.kind));
    if (e.parent_hash)
      p.pack_uint64(*e.parent_hash);
    else
      p.pack_nil();
    p.pack_array(static_cast<uint32_t>(e.blocks.size()));
    for (const auto& b : e.blocks) {
      p.pack_array(2);
      p.pack_uint64(b.hash);
      p.pack_uint64(b.tokens_hash);
    }
    pack_hashes(p, e.removed);
  });
}

KvEvent decode_kv_event(std::string_view frame) {
  const Message m = decode_message(frame, "KV event", 7);
  const msgpack::object* f = m.items;
  KvEvent e;
  e.event_id = u64(f[1], "KV event id");
  e.dp_rank = i32(f[2], "KV event dp_rank");
  const uint64_t kind = u64(f[3], "KV event kind");
  WS_CHECK_CODE(kDataLoss, kind <= static_cast<uint64_t>(KvEventKind::kCleared),
                "malformed KV event: unknown kind {}", kind);
  e.kind = static_cast<KvEventKind>(kind);
  if (f[4].type != msgpack::type::NIL) e.parent_hash = u64(f[4], "KV event parent_hash");
  const msgpack::object* blocks = array_of(f[5], "KV event blocks", 0);
  for (uint32_t i = 0; i < f[5].via.array.size; ++i) {
    const msgpack::object* b = array_of(blocks[i], "KV event block", 2);
    e.blocks.push_back({u64(b[0], "KV block hash"), u64(b[1], "KV block tokens_hash")});
  }
  e.removed = hashes(f[6], "KV event removed");
  return e;
}

std::string encode_kv_state_query(int32_t dp_rank) {
  return encode_message(2, [&](Packer& p) { p.pack_uint32(static_cast<uint32_t>(dp_rank)); });
}

int32_t decode_kv_state_query(std::string_view frame) {
  const Message m = decode_message(frame, "KV state query", 2);
  return i32(m.items[1], "KV state query dp_rank");
}

std::string encode_kv_state(const KvState& s) {
  return encode_message(4, [&](Packer& p) {
    p.pack_uint64(s.last_event_id);
    p.pack_uint32(static_cast<uint32_t>(s.dp_rank));
    pack_hashes(p, s.blocks);
  });
}

KvState decode_kv_state(std::string_view frame) {
  const Message m = decode_message(frame, "KV state", 4);
  const msgpack::object* f = m.items;
  KvState s;
  s.last_event_id = u64(f[1], "KV state last_event_id");
  s.dp_rank = i32(f[2], "KV state dp_rank");
  s.blocks = hashes(f[3], "KV state blocks");
  return s;
}

}  // namespace wideserve::runtime
