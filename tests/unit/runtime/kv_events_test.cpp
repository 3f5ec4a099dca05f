// KV event wire format: round trips and malformed frames.
#include "runtime/kv_events.h"

#include <gtest/gtest.h>

#include "common/check.h"

namespace wideserve::runtime {
namespace {

void expect_data_loss(std::string_view frame) {
  try {
    decode_kv_event(frame);
    FAIL() << "decoded garbage";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
  }
}

TEST(KvEvents, RoundTrip) {
  KvEvent e;
  e.event_id = 42;
  e.dp_rank = 3;
  e.kind = KvEventKind::kStored;
  e.parent_hash = 0xffffffffffffffffull;
  e.blocks = {{1, 2}, {0x8000000000000000ull, 4}};
  KvEvent b = decode_kv_event(encode_kv_event(e));
  EXPECT_EQ(b.event_id, 42u);
  EXPECT_EQ(b.dp_rank, 3);
  EXPECT_EQ(b.kind, KvEventKind::kStored);
  EXPECT_EQ(b.parent_hash, e.parent_hash);
  ASSERT_EQ(b.blocks.size(), 2u);
  EXPECT_EQ(b.blocks[1].hash, 0x8000000000000000ull);
  EXPECT_EQ(b.blocks[1].tokens_hash, 4u);

  KvEvent r;
  r.event_id = 43;
  r.kind = KvEventKind::kRemoved;
  r.removed = {9, 8};
  KvEvent rb = decode_kv_event(encode_kv_event(r));
  EXPECT_FALSE(rb.parent_hash);
  EXPECT_EQ(rb.removed, (std::vector<uint64_t>{9, 8}));
  EXPECT_EQ(
      decode_kv_event(encode_kv_event(KvEvent{.event_id = 1, .kind = KvEventKind::kCleared})).kind,
      KvEventKind::kCleared);

  KvState s{77, 1, {5, 6, 7}};
  KvState sb = decode_kv_state(encode_kv_state(s));
  EXPECT_EQ(sb.last_event_id, 77u);
  EXPECT_EQ(sb.dp_rank, 1);
  EXPECT_EQ(sb.blocks, s.blocks);
  EXPECT_EQ(decode_kv_state_query(encode_kv_state_query(2)), 2);
}

TEST(KvEvents, MalformedFramesAreDataLoss) {
  expect_data_loss("");
  expect_data_loss("hello");
  const std::string good = encode_kv_event(KvEvent{.event_id = 5, .removed = {1, 2, 3}});
  for (size_t n = 0; n < good.size(); ++n) expect_data_loss(good.substr(0, n));
  expect_data_loss(good + "x");  // trailing bytes
  std::string bad_version = good;
  bad_version[1] = 9;  // fixarray(7), then the version as a positive fixint
  expect_data_loss(bad_version);
  std::string bad_kind = good;
  bad_kind[4] = 7;  // [ver, id=5, rank=0, kind]
  expect_data_loss(bad_kind);
  EXPECT_THROW(decode_kv_state("\x91\x01"), Error);
}

}  // namespace
}  // namespace wideserve::runtime
