// Wire format and socket plumbing of the TCP transfer backend: the frame header and types, the
// buffers that send and receive frames incrementally on non-blocking sockets, and small socket
// helpers. Frames are in host byte order; the magic catches a peer of another byte order or build.
#pragma once

#include "transfer/transfer_agent.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wideserve::transfer::tcp {

// Every frame starts with this header (host byte order; the magic catches a mismatch).
struct WireHeader {
  uint32_t magic;
  uint32_t type;
  uint64_t a, b, c;
};
static_assert(sizeof(WireHeader) == 32);
inline constexpr uint32_t kMagic = 0x4b565357;  // "WSVK"
enum FrameType : uint32_t {
  kHello = 1,   // c = name length; then the writer's agent name
  kData = 2,    // a = transfer id, b = remote address, c = length; then the bytes
  kCommit = 3,  // a = transfer id, c = notification length; then the notification
  kAbort = 4,   // a = transfer id: the writer gave up; forget it
  kAck = 5,     // target -> writer: a = transfer id, b = 1 ok / 0 rejected, c = error length
};
inline constexpr uint64_t kMaxSmallBody = kMaxNotificationBytes + 4096;
inline constexpr size_t kRecvSliceBytes = 8 << 20;  // fairness between connections per loop turn
inline constexpr size_t kStageBytes = 256 << 10;    // read-ahead buffer; larger payloads skip it
inline constexpr int kMaxBatchOps = 64;             // data frames gathered into one sendmsg

// strerror(e) as a string.
std::string errno_text(int e);

// A whole frame: header with c = body size, then the body.
std::string frame(uint32_t type, uint64_t a, uint64_t b, std::string_view body);

// Makes a socket non-blocking and turns Nagle off.
void set_nonblocking(int fd);

// The host's primary IPv4 address (what its hostname resolves to), or 127.0.0.1.
std::string primary_ipv4();

// Bytes still to write: a small frame buffer, then (for data) the payload.
struct OutBuffer {
  std::string bytes;
  size_t off = 0;
  bool empty() const { return off >= bytes.size(); }
  void add(std::string s) {
    if (empty()) {
      bytes = std::move(s);
      off = 0;
    } else {
      bytes += s;
    }
  }
};

// Incremental reader of one frame header + small body.
struct InFrame {
  WireHeader h{};
  size_t got = 0;  // header bytes read
  std::string body;
  uint64_t remaining = 0;  // body/payload bytes still to read
  char* dest = nullptr;    // payload destination (data frame), or null to discard/collect
  bool device = false;     // dest is kCuda memory: staged bytes land through device_copy
  bool in_body = false;
};

}  // namespace wideserve::transfer::tcp
