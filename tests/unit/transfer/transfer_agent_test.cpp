// Transfer agents in one process: two (or three) agents of the same backend writing into each
// other's registered memory. Runs for the TCP backend and the UCX backend over UCX's tcp transport
// and over shared memory.
#include "transfer/transfer_agent.h"

#include "common/check.h"
#include "transfer/agent_core.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

namespace wideserve::transfer {
namespace {

using namespace std::chrono_literals;

struct Backend {
  std::string name;        // make_transfer_agent backend
  std::string transports;  // UCX_TLS for ucx
  bool peer_death = true;  // can a peer's death be observed (needs a connection-based transport)
};

std::string backend_label(const testing::TestParamInfo<Backend>& info) {
  std::string s = info.param.name + "_" +
                  (info.param.transports.empty() ? std::string("default") : info.param.transports);
  std::replace_if(
      s.begin(), s.end(), [](char c) { return !std::isalnum(uint8_t(c)); }, '_');
  return s;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    std::memcpy(&v[i], &x, 8);
  }
  for (; i < n; ++i) v[i] = uint8_t(rng());
  return v;
}

class TransferTest : public testing::TestWithParam<Backend> {
 protected:
  std::unique_ptr<TransferAgent> make(const std::string& name,
                                      std::chrono::milliseconds timeout = 10s) {
    AgentOptions o;
    o.name = name;
    o.listen_host = "127.0.0.1";
    o.ucx_transports = GetParam().transports;
    o.timeout = timeout;
    return make_transfer_agent(GetParam().name, o);
  }
  static TransferStatus wait_done(TransferAgent& a, TransferHandle h) {
    TransferStatus s = a.wait(h, 60s);
    EXPECT_EQ(s.state, TransferState::kDone) << s.error;
    return s;
  }
};

TEST_P(TransferTest, ManyScatteredPageWritesLandAndNotify) {
  auto target = make("decode");
  auto init = make("prefill");
  constexpr size_t kPage = 4096, kPages = 2048;
  std::vector<uint8_t> dst(kPage * kPages, 0);
  target->register_memory(dst.data(), dst.size());
  auto src = random_bytes(kPage * kPages, 1);
  init->register_memory(src.data(), src.size());
  init->add_remote("decode", target->metadata());

  // Source page i goes to destination page perm[i]: nothing is adjacent, nothing merges.
  std::vector<size_t> perm(kPages);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
  std::vector<WriteOp> ops;
  for (size_t i = 0; i < kPages; ++i) {
    ops.push_back(
        {src.data() + i * kPage, reinterpret_cast<uint64_t>(dst.data() + perm[i] * kPage), kPage});
  }
  auto h = init->write("decode", ops, "room=42");
  wait_done(*init, h);
  auto notes = target->wait_notifications(10s);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].peer, "prefill");
  EXPECT_EQ(notes[0].message, "room=42");
  for (size_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(std::memcmp(src.data() + i * kPage, dst.data() + perm[i] * kPage, kPage), 0) << i;
  }
  init->release(h);
  EXPECT_THROW(init->poll(h), Error);
}

TEST_P(TransferTest, AdjacentOpsMergeAndLand) {
  auto target = make("t");
  auto init = make("i");
  std::vector<uint8_t> dst(1 << 20, 0);
  target->register_memory(dst.data(), dst.size());
  auto src = random_bytes(1 << 20, 2);
  init->add_remote("t", target->metadata());
  // 256 consecutive 4 KiB ops: one merged op of 1 MiB.
  std::vector<WriteOp> ops;
  for (size_t off = 0; off < src.size(); off += 4096) {
    ops.push_back({src.data() + off, reinterpret_cast<uint64_t>(dst.data() + off), 4096});
  }
  std::vector<RemoteRegion> regions{{reinterpret_cast<uint64_t>(dst.data()), dst.size(), {}}};
  EXPECT_EQ(plan_ops("t", regions, ops).size(), 1u);
  EXPECT_EQ(merge_adjacent_ops(ops).size(), 1u);
  wait_done(*init, init->write("t", ops, ""));
  EXPECT_EQ(dst, src);
  EXPECT_TRUE(target->take_notifications().empty());  // empty notify sends nothing
}

TEST_P(TransferTest, LargeAndTinyWrites) {
  auto target = make("t");
  auto init = make("i");
  constexpr size_t kBig = 256u << 20;
  std::vector<uint8_t> dst(kBig + 64, 0);
  target->register_memory(dst.data(), dst.size());
  auto src = random_bytes(kBig, 3);
  init->register_memory(src.data(), src.size());
  init->add_remote("t", target->metadata());
  uint64_t base = reinterpret_cast<uint64_t>(dst.data());
  WriteOp big{src.data(), base, kBig};
  wait_done(*init, init->write("t", {&big, 1}, "big"));
  EXPECT_EQ(std::memcmp(dst.data(), src.data(), kBig), 0);
  // Tiny writes at odd offsets, including the region's last byte.
  const uint8_t tiny[3] = {0xAB, 0xCD, 0xEF};
  std::vector<WriteOp> ops{
      {tiny, base + kBig + 1, 1}, {tiny + 1, base + kBig + 7, 2}, {tiny, base + kBig + 63, 1}};
  wait_done(*init, init->write("t", ops, "tiny"));
  EXPECT_EQ(dst[kBig], 0);
  EXPECT_EQ(dst[kBig + 1], 0xAB);
  EXPECT_EQ(dst[kBig + 7], 0xCD);
  EXPECT_EQ(dst[kBig + 8], 0xEF);
  EXPECT_EQ(dst[kBig + 63], 0xAB);
  std::vector<std::string> got;
  for (int i = 0; i < 50 && got.size() < 2; ++i) {
    for (auto& n : target->wait_notifications(100ms)) got.push_back(n.message);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"big", "tiny"}));
}

TEST_P(TransferTest, OutOfBoundsOpsAreRejected) {
  auto target = make("t");
  auto init = make("i");
  std::vector<uint8_t> dst(8192, 0);
  target->register_memory(dst.data() + 4096, 4096);  // only the second page is exported
  auto src = random_bytes(8192, 4);
  init->add_remote("t", target->metadata());
  uint64_t base = reinterpret_cast<uint64_t>(dst.data());
  WriteOp before{src.data(), base, 4096};
  WriteOp straddle{src.data(), base + 4096 + 1, 4096};
  WriteOp ok{src.data(), base + 4096, 4096};
  try {
    init->write("t", {&before, 1}, "x");
    FAIL() << "write outside the region was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("outside every region"), std::string::npos) << e.what();
  }
  EXPECT_THROW(init->write("t", {&straddle, 1}, "x"), Error);
  EXPECT_THROW(init->write("nobody", {&ok, 1}, "x"), Error);
  EXPECT_THROW(init->write("t", {&ok, 1}, std::string(kMaxNotificationBytes + 1, 'n')), Error);
  wait_done(*init, init->write("t", {&ok, 1}, "ok"));
  EXPECT_EQ(std::memcmp(dst.data() + 4096, src.data(), 4096), 0);
  EXPECT_TRUE(std::all_of(dst.begin(), dst.begin() + 4096, [](uint8_t b) { return b == 0; }));
}

TEST_P(TransferTest, TargetRejectsWritesOutsideItsRegions) {
  if (GetParam().name != "tcp") GTEST_SKIP() << "UCX bounds are enforced by rkeys/the initiator";
  auto target = make("t");
  auto init = make("i");
  std::vector<uint8_t> dst(8192, 0);
  target->register_memory(dst.data() + 4096, 4096);
  // Forged metadata claiming the whole buffer: the initiator's check passes, the target's must not.
  auto j = nlohmann::json::parse(target->metadata());
  j["regions"][0]["base"] = reinterpret_cast<uint64_t>(dst.data());
  j["regions"][0]["length"] = 8192;
  init->add_remote("t", j.dump());
  auto src = random_bytes(8192, 5);
  WriteOp bad{src.data(), reinterpret_cast<uint64_t>(dst.data()), 8192};
  auto s = init->wait(init->write("t", {&bad, 1}, "forged"), 10s);
  EXPECT_EQ(s.state, TransferState::kFailed);
  EXPECT_NE(s.error.find("outside every registered region"), std::string::npos) << s.error;
  EXPECT_TRUE(std::all_of(dst.begin(), dst.end(), [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(target->wait_notifications(200ms).empty());
  // The connection survives a rejected write.
  WriteOp ok{src.data(), reinterpret_cast<uint64_t>(dst.data() + 4096), 4096};
  wait_done(*init, init->write("t", {&ok, 1}, "ok"));
  EXPECT_EQ(target->wait_notifications(5s).at(0).message, "ok");
}

TEST_P(TransferTest, NotificationArrivesOnlyAfterItsData) {
  auto target = make("t");
  auto init = make("i");
  constexpr size_t kBytes = 4 << 20;
  std::vector<uint8_t> dst(kBytes, 0);
  target->register_memory(dst.data(), dst.size());
  init->add_remote("t", target->metadata());
  std::atomic<int> checked{-1};
  std::atomic<bool> bad{false};
  constexpr int kRounds = 20;
  std::thread checker([&] {
    for (int r = 0; r < kRounds; ++r) {
      std::vector<Notification> n;
      auto deadline = std::chrono::steady_clock::now() + 30s;
      while (n.empty() && std::chrono::steady_clock::now() < deadline) {
        n = target->wait_notifications(100ms);
      }
      if (n.size() != 1 || n[0].message != std::to_string(r)) {
        bad = true;
        return;
      }
      // Every byte of round r must be visible the moment its notification is seen.
      for (size_t i = 0; i < kBytes; i += 4096) {
        if (dst[i] != uint8_t(r + 1) || dst[i + 4095] != uint8_t(r + 1)) bad = true;
      }
      checked = r;
    }
  });
  std::vector<uint8_t> src(kBytes);
  for (int r = 0; r < kRounds && !bad; ++r) {
    std::fill(src.begin(), src.end(), uint8_t(r + 1));
    std::vector<WriteOp> ops;
    for (size_t off = 0; off < kBytes; off += 8192) {  // every other page, then the rest
      ops.push_back({src.data() + off, reinterpret_cast<uint64_t>(dst.data() + off), 4096});
    }
    for (size_t off = 4096; off < kBytes; off += 8192) {
      ops.push_back({src.data() + off, reinterpret_cast<uint64_t>(dst.data() + off), 4096});
    }
    auto h = init->write("t", ops, std::to_string(r));
    wait_done(*init, h);
    while (checked < r && !bad) std::this_thread::sleep_for(1ms);
  }
  checker.join();
  EXPECT_FALSE(bad);
  EXPECT_EQ(checked, kRounds - 1);
}

TEST_P(TransferTest, ConcurrentTransfersToTwoPeers) {
  auto a = make("a");
  auto b = make("b");
  auto init = make("i");
  constexpr size_t kBytes = 32 << 20;
  std::vector<uint8_t> da(kBytes, 0), db(kBytes, 0);
  a->register_memory(da.data(), kBytes);
  b->register_memory(db.data(), kBytes);
  init->add_remote("a", a->metadata());
  init->add_remote("b", b->metadata());
  auto sa = random_bytes(kBytes, 10), sb = random_bytes(kBytes, 11);
  auto send = [&](const std::string& peer, std::vector<uint8_t>& s, std::vector<uint8_t>& d) {
    std::vector<TransferHandle> hs;
    for (size_t chunk = 0; chunk < 8; ++chunk) {  // 8 transfers of 4 MiB in 16 KiB ops
      std::vector<WriteOp> ops;
      for (size_t off = chunk * (kBytes / 8); off < (chunk + 1) * (kBytes / 8); off += 32768) {
        ops.push_back({s.data() + off, reinterpret_cast<uint64_t>(d.data() + off), 16384});
        ops.push_back(
            {s.data() + off + 16384, reinterpret_cast<uint64_t>(d.data() + off + 16384), 16384});
      }
      hs.push_back(init->write(peer, ops, peer + std::to_string(chunk)));
    }
    for (auto h : hs) wait_done(*init, h);
  };
  std::thread ta([&] { send("a", sa, da); });
  std::thread tb([&] { send("b", sb, db); });
  ta.join();
  tb.join();
  EXPECT_EQ(da, sa);
  EXPECT_EQ(db, sb);
  size_t na = 0, nb = 0;
  for (int i = 0; i < 100 && (na < 8 || nb < 8); ++i) {
    for (auto& n : a->wait_notifications(50ms)) na += n.message.starts_with("a") && n.peer == "i";
    for (auto& n : b->wait_notifications(50ms)) nb += n.message.starts_with("b") && n.peer == "i";
  }
  EXPECT_EQ(na, 8u);
  EXPECT_EQ(nb, 8u);
}

TEST_P(TransferTest, PeerDestroyedMidTransferFailsWithinTimeout) {
  if (!GetParam().peer_death) GTEST_SKIP() << "shared-memory transports cannot see a peer die";
  auto target = make("t");
  auto init = make("i", 2s);
  constexpr size_t kBytes = 512u << 20;
  std::vector<uint8_t> dst(kBytes, 0);
  target->register_memory(dst.data(), kBytes);
  std::vector<uint8_t> src(kBytes, 7);
  init->add_remote("t", target->metadata());
  std::vector<WriteOp> ops;
  for (size_t off = 0; off < kBytes; off += 8192) {
    ops.push_back({src.data() + off, reinterpret_cast<uint64_t>(dst.data() + off), 4096});
  }
  auto h = init->write("t", ops, "never");
  std::this_thread::sleep_for(50ms);
  auto t0 = std::chrono::steady_clock::now();
  target.reset();
  auto s = init->wait(h, 20s);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(s.state, TransferState::kFailed) << "transfer finished before the peer died";
  EXPECT_NE(s.error.find("'t'"), std::string::npos) << s.error;
  EXPECT_LT(took, 4s) << s.error;
  // Later writes to the dead peer fail fast instead of hanging.
  auto s2 = init->wait(init->write("t", {ops.data(), 1}, "again"), 5s);
  EXPECT_EQ(s2.state, TransferState::kFailed);
}

TEST_P(TransferTest, CancelStopsTransferAndItsNotification) {
  auto target = make("t");
  auto init = make("i");
  constexpr size_t kBytes = 256u << 20;
  std::vector<uint8_t> dst(kBytes, 0);
  target->register_memory(dst.data(), kBytes);
  std::vector<uint8_t> src(kBytes, 9);
  init->add_remote("t", target->metadata());
  std::vector<WriteOp> ops;
  for (size_t off = 0; off < kBytes; off += 8192) {
    ops.push_back({src.data() + off, reinterpret_cast<uint64_t>(dst.data() + off), 4096});
  }
  auto h = init->write("t", ops, "cancelled-room");
  init->cancel(h);
  auto s = init->poll(h);
  if (s.state == TransferState::kFailed) {
    EXPECT_EQ(s.error, "cancelled");
    EXPECT_TRUE(target->wait_notifications(500ms).empty());
  } else {
    EXPECT_EQ(s.state, TransferState::kDone);  // finished before cancel()
  }
  // The peer stays usable.
  WriteOp one{src.data(), reinterpret_cast<uint64_t>(dst.data()), 4096};
  wait_done(*init, init->write("t", {&one, 1}, "after"));
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    for (auto& n : target->wait_notifications(100ms)) seen |= n.message == "after";
  }
  EXPECT_TRUE(seen);
}

TEST_P(TransferTest, UnreachablePeerFailsWithinTimeout) {
  std::string meta;
  {
    auto gone = make("gone");
    std::vector<uint8_t> buf(4096);
    gone->register_memory(buf.data(), buf.size());
    meta = gone->metadata();
  }
  if (!GetParam().peer_death) GTEST_SKIP() << "shared-memory transports cannot see a peer die";
  auto init = make("i", 1s);
  std::vector<uint8_t> src(4096, 1);
  try {
    init->add_remote("gone", meta);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);  // UCX may refuse the address outright
    return;
  }
  auto base = nlohmann::json::parse(meta)["regions"][0]["base"].get<uint64_t>();
  WriteOp op{src.data(), base, 4096};
  auto t0 = std::chrono::steady_clock::now();
  auto s = init->wait(init->write("gone", {&op, 1}, "x"), 10s);
  EXPECT_EQ(s.state, TransferState::kFailed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << s.error;
}

TEST_P(TransferTest, MetadataOfAnotherBackendIsRejected) {
  auto init = make("i");
  std::string other = GetParam().name == "tcp"
                          ? R"({"backend":"ucx","name":"x","address":"","regions":[]})"
                          : R"({"backend":"tcp","name":"x","host":"h","port":1,"regions":[]})";
  EXPECT_THROW(init->add_remote("x", other), Error);
  EXPECT_THROW(init->add_remote("x", "not json"), Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, TransferTest,
                         testing::Values(Backend{"tcp", "", true}, Backend{"ucx", "tcp", true},
                                         Backend{"ucx", "", true},
                                         Backend{"ucx", "posix,cma,self", false}),
                         backend_label);

TEST(TransferFactory, BackendNames) {
  AgentOptions o;
  o.name = "x";
  o.listen_host = "127.0.0.1";
  o.ucx_transports = "tcp";
  try {
    make_transfer_agent("rdma-magic", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("--disaggregation-transfer-backend"), std::string::npos);
  }
  try {
    make_transfer_agent("mooncake", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnimplemented);
    EXPECT_NE(std::string(e.what()).find("not supported yet/not applicable: mooncake"),
              std::string::npos);
  }
  EXPECT_STREQ(make_transfer_agent("nixl", o)->backend(), "ucx");
  EXPECT_STREQ(make_transfer_agent("tcp", o)->backend(), "tcp");
  auto a = make_transfer_agent("tcp", o);
  std::vector<uint8_t> buf(16);
  EXPECT_THROW(a->register_memory(buf.data(), buf.size(), MemoryKind::kCuda), Error);
  RegionId r = a->register_memory(buf.data(), buf.size());
  a->deregister_memory(r);
  EXPECT_THROW(a->deregister_memory(r), Error);
}

// MemoryKind::kCuda on the tcp agent: outgoing bytes of a kCuda region leave from a host copy
// made by write(), incoming ones land through device_copy (here a counted memcpy standing in for
// cudaMemcpy; the GPU test runs the real one). Host and "device" regions mix in one transfer.
TEST(TransferTcp, DeviceRegionsStageThroughDeviceCopy) {
  std::atomic<size_t> copied{0};
  auto make = [&](const char* name) {
    AgentOptions o;
    o.name = name;
    o.listen_host = "127.0.0.1";
    o.device_copy = [&](void* dst, const void* src, size_t n) {
      std::memcpy(dst, src, n);
      copied += n;
    };
    return make_transfer_agent("tcp", o);
  };
  auto a = make("a"), b = make("b");
  const size_t n = 3 << 20;  // past the receiver's read-ahead stage: several stage refills
  auto dev_src = random_bytes(n, 1), host_src = random_bytes(4096, 2);
  std::vector<uint8_t> dev_dst(n + 4096, 0), host_dst(4096, 0);
  a->register_memory(dev_src.data(), dev_src.size(), MemoryKind::kCuda);
  a->register_memory(host_src.data(), host_src.size());
  b->register_memory(dev_dst.data(), dev_dst.size(), MemoryKind::kCuda);
  b->register_memory(host_dst.data(), host_dst.size());
  a->add_remote("b", b->metadata());
  const std::vector<WriteOp> ops = {
      {dev_src.data(), reinterpret_cast<uint64_t>(dev_dst.data() + 4096), n},
      {host_src.data(), reinterpret_cast<uint64_t>(host_dst.data()), host_src.size()},
      {dev_src.data(), reinterpret_cast<uint64_t>(dev_dst.data()), 100}};
  auto h = a->write("b", ops, "done");
  TransferStatus st = a->wait(h, 60s);
  ASSERT_EQ(st.state, TransferState::kDone) << st.error;
  auto notes = b->wait_notifications(10s);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].message, "done");
  EXPECT_EQ(0, std::memcmp(dev_dst.data() + 4096, dev_src.data(), n));
  EXPECT_EQ(0, std::memcmp(dev_dst.data(), dev_src.data(), 100));
  EXPECT_EQ(host_dst, host_src);
  // Staged out (n + 100 bytes) and landed in (n + 100): the host op never went through it.
  EXPECT_EQ(copied.load(), 2 * (n + 100));
  a->release(h);
}

// A copy into GPU memory that fails (device_copy throws) fails that transfer with the reason and
// no notification; the next write over the same connection still lands.
TEST(TransferTcp, FailedDeviceCopyFailsTheTransfer) {
  std::atomic<bool> broken{true};
  AgentOptions o;
  o.listen_host = "127.0.0.1";
  o.name = "a";
  auto a = make_transfer_agent("tcp", o);
  o.name = "b";
  o.device_copy = [&](void* dst, const void* src, size_t n) {
    if (broken) throw std::runtime_error("device lost");
    std::memcpy(dst, src, n);
  };
  auto b = make_transfer_agent("tcp", o);
  auto src = random_bytes(8192, 3);
  std::vector<uint8_t> dst(8192, 0);
  a->register_memory(src.data(), src.size());
  b->register_memory(dst.data(), dst.size(), MemoryKind::kCuda);
  a->add_remote("b", b->metadata());
  const WriteOp op{src.data(), reinterpret_cast<uint64_t>(dst.data()), src.size()};
  auto h1 = a->write("b", std::span<const WriteOp>(&op, 1), "first");
  TransferStatus s1 = a->wait(h1, 30s);
  EXPECT_EQ(s1.state, TransferState::kFailed);
  EXPECT_NE(s1.error.find("copy into GPU memory failed: device lost"), std::string::npos)
      << s1.error;
  EXPECT_TRUE(b->take_notifications().empty());
  broken = false;
  auto h2 = a->write("b", std::span<const WriteOp>(&op, 1), "second");
  TransferStatus s2 = a->wait(h2, 30s);
  ASSERT_EQ(s2.state, TransferState::kDone) << s2.error;
  EXPECT_EQ(dst, src);
  auto notes = b->wait_notifications(10s);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].message, "second");
}

TEST(TransferUcx, DeviceRegionsAreRefusedWithTheReason) {
  AgentOptions o;
  o.name = "u";
  o.ucx_transports = "tcp";
  o.device_copy = [](void* d, const void* s, size_t n) { std::memcpy(d, s, n); };
  auto a = make_transfer_agent("ucx", o);
  std::vector<uint8_t> buf(64);
  try {
    a->register_memory(buf.data(), buf.size(), MemoryKind::kCuda);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnimplemented);
    EXPECT_NE(std::string(e.what()).find("host memory only"), std::string::npos) << e.what();
  }
}

TEST(TransferCore, Base64RoundTrip) {
  for (size_t n = 0; n < 20; ++n) {
    auto b = random_bytes(n, uint32_t(n));
    std::string s(b.begin(), b.end());
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_THROW(base64_decode("Zm9"), Error);
}

TEST(TransferCore, MergeOnlyWhenBothSidesContinue) {
  char local[64];
  std::vector<WriteOp> ops{{local, 1000, 8},
                           {local + 8, 1008, 8},    // merges
                           {local + 16, 2000, 8},   // remote jumps
                           {local + 32, 2008, 8},   // local jumps
                           {local + 40, 2016, 0}};  // empty: dropped
  auto m = merge_adjacent_ops(ops);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].length, 16u);
  EXPECT_EQ(m[1].remote, 2000u);
  EXPECT_EQ(m[2].local, local + 32);
  // Ops in two adjacent regions do not merge across the region boundary.
  std::vector<RemoteRegion> regions{{1000, 8, {}}, {1008, 8, {}}};
  EXPECT_EQ(plan_ops("p", regions, std::span(ops).first(2)).size(), 2u);
}

}  // namespace
}  // namespace wideserve::transfer
