// The TCP transfer agent's class and per-connection state, shared by its three parts:
// tcp_agent.cpp (lifecycle, progress loop, public calls), tcp_writer.cpp (outgoing connections:
// data/commit/abort frames out, acks in) and tcp_receiver.cpp (incoming connections: frames in,
// bounds-checked payloads landed in place, acks out). Internal to src/transfer.
#pragma once

#include "transfer/agent_core.h"
#include "transfer/tcp_wire.h"

#include <chrono>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace wideserve::transfer::tcp {

using Clock = std::chrono::steady_clock;

// One write on its way to a peer.
struct TcpTransfer {
  uint64_t id = 0;
  std::vector<PlannedOp> ops;
  std::string notify;
  size_t op = 0;    // op being sent
  size_t sent = 0;  // bytes of (header + payload) of that op already sent
  bool cancelled = false;
  bool started = false;      // some frame of it went out
  std::vector<char> staged;  // host copies of ops whose local bytes are in kCuda regions
};

// Outgoing connection to a peer, with the transfers queued for it and those awaiting its ack.
struct TcpPeer {
  std::string name;
  uint64_t gen = 0;
  std::string host;
  int port = 0;
  int fd = -1;
  bool connecting = true;
  bool failed = false;
  std::string error;
  OutBuffer out;
  std::deque<std::unique_ptr<TcpTransfer>> queue;  // front is being sent
  std::map<uint64_t, std::unique_ptr<TcpTransfer>> awaiting_ack;
  InFrame in;
  Clock::time_point last_progress;
  bool busy() const { return !queue.empty() || !awaiting_ack.empty() || !out.empty(); }
};

// Incoming connection from a writer.
struct InConn {
  int fd = -1;
  std::string peer;  // from the hello frame
  InFrame in;
  OutBuffer out;
  std::map<uint64_t, std::string> rejected;  // transfer id -> why its data was refused
  std::vector<char> stage;                   // bytes read ahead of the frame parser
  size_t pos = 0, end = 0;
  bool broken = false;  // malformed input: close
};

// A region registered for peers to write into.
struct LocalRegion {
  char* base;
  size_t length;
  MemoryKind kind;
  // Whether [addr, addr + len) lies inside this region.
  bool holds(uint64_t addr, uint64_t len) const {
    const uint64_t b = reinterpret_cast<uint64_t>(base);
    return addr >= b && len <= length && addr - b <= length - len;
  }
};

class TcpAgent final : public AgentBase {
 public:
  explicit TcpAgent(const AgentOptions& opts);
  ~TcpAgent() override;

  const char* backend() const override { return "tcp"; }
  RegionId register_memory(void* base, size_t bytes, MemoryKind kind) override;
  void deregister_memory(RegionId region) override;
  std::string metadata() const override;
  void add_remote(const std::string& peer_name, const std::string& metadata) override;
  void remove_remote(const std::string& peer_name) override;
  TransferHandle write(const std::string& peer, std::span<const WriteOp> ops,
                       std::string notify) override;

 private:
  // tcp_agent.cpp
  void run() override;
  void stop_transfer(uint64_t id) override;
  // tcp_writer.cpp
  void connect_peer(TcpPeer* p);
  void drive_peer_out(TcpPeer* p);
  void drive_peer_in(TcpPeer* p);
  void fail_peer(TcpPeer* p, const std::string& reason);
  // tcp_receiver.cpp
  void accept_all();
  bool drive_conn_in(InConn* c);  // false: connection closed
  size_t consume(InConn* c, const char* data, size_t avail);
  void start_frame(InConn* c);
  void drive_conn_out(InConn* c);
  void handle_frame(InConn* c);
  // Empty when [addr, addr + len) is inside a registered region (*device: a kCuda one).
  std::string check_bounds(uint64_t addr, uint64_t len, bool* device);
  // Whether [p, p + len) is inside a registered kCuda region.
  bool in_device_region(const void* p, size_t len) const;

  int listen_fd_ = -1;
  std::string host_;
  int port_ = 0;

  mutable std::mutex regions_mu_;  // API threads register, the progress thread bounds-checks
  std::map<RegionId, LocalRegion> regions_;
  RegionId next_region_ = 1;

  // Progress-thread state.
  std::map<std::string, std::unique_ptr<TcpPeer>> peers_;
  std::list<std::unique_ptr<InConn>> conns_;
};

}  // namespace wideserve::transfer::tcp
