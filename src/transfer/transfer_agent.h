// KV transfer agent: one-sided writes from this process's memory into memory that a peer agent (in
// another process or host) registered, followed by a notification delivered to the peer only after
// all bytes of that write are visible there. Concepts follow NIXL (agent, registered memory,
// exchanged metadata, write request with notification); backends: UCX (UCP put + flush + active
// message) and a plain TCP socket fallback.
//
// Typical PD use: the decode engine registers its KV pool and sends metadata() to the prefill
// engine (through the bootstrap server); prefill calls add_remote(decode_name, blob) once, then per
// request write(decode_name, page ops, "room=<id>") and poll()s the handle; decode calls
// take_notifications() and marks the room's KV as arrived.
//
// Thread-safety: every agent runs its own progress thread, which is the only thread that touches
// the backend (UCP worker or sockets). All public methods may be called from any thread, and
// concurrently; they hand work to the progress thread and never block on the network (except
// wait() and wait_notifications(), which block the caller only). The destructor must not race with
// other calls on the same agent; it fails pending transfers and returns within about opts.timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace wideserve::transfer {

// Where registered memory lives. kCuda (a GPU KV pool): the tcp agent stages it through host memory
// with AgentOptions::device_copy; the ucx agent registers host memory only.
enum class MemoryKind { kHost, kCuda };

// Name of a memory kind ("host", "cuda").
const char* memory_kind_name(MemoryKind kind);

// Id of a registered local region (unique within one agent, never reused).
using RegionId = uint64_t;

// One contiguous copy: `length` bytes from local `local` to the peer's address `remote`.
// [remote, remote + length) must lie inside one region the peer registered and exported in its
// metadata; the local bytes must stay valid and unchanged until the transfer is done or failed.
struct WriteOp {
  const void* local = nullptr;
  uint64_t remote = 0;
  size_t length = 0;
};

// Opaque id of one write; valid until release().
struct TransferHandle {
  uint64_t id = 0;
  bool operator==(const TransferHandle&) const = default;
};

// State of a transfer: pending, done (all bytes landed, notification sent), or failed.
enum class TransferState { kPending, kDone, kFailed };

// Name of a transfer state ("pending", "done", "failed").
const char* transfer_state_name(TransferState state);

// Result of poll(): the state, and for kFailed a human-readable reason naming the peer.
struct TransferStatus {
  TransferState state = TransferState::kPending;
  std::string error;
};

// A notification received by this agent: who sent it and the message given to write().
struct Notification {
  std::string peer;
  std::string message;
};

// Largest notification message accepted by write().
inline constexpr size_t kMaxNotificationBytes = 64 * 1024;

// Construction options for every backend; fields a backend does not use are ignored.
struct AgentOptions {
  std::string name;                     // unique name of this agent; peers see it on notifications
  std::string listen_host = "0.0.0.0";  // tcp: address to listen on
  uint16_t listen_port = 0;             // tcp: port to listen on (0 = any free port)
  std::string advertise_host;           // tcp: host put in metadata ("" = listen_host, or the
                                        // host's primary IPv4 when listen_host is a wildcard)
  std::string ucx_transports;   // ucx: UCX_TLS for this agent ("" = environment/UCX default),
                                // e.g. "tcp", "sm,self", "posix,cma,tcp"
  std::string ucx_net_devices;  // ucx: UCX_NET_DEVICES for this agent ("" = default)
  std::chrono::milliseconds timeout{10000};  // a transfer that makes no progress this long fails
  // tcp: copies `bytes` between host memory and kCuda memory, either way (the CUDA backend passes
  // cudaMemcpy with cudaMemcpyDefault); needed to register kCuda memory. Called on the thread
  // that calls write() (outgoing bytes, staged before the transfer starts) and on the agent's
  // progress thread (incoming bytes, landed before the commit is acknowledged).
  std::function<void(void* dst, const void* src, size_t bytes)> device_copy;
};

// Abstract transfer agent; make one with make_transfer_agent().
class TransferAgent {
 public:
  virtual ~TransferAgent() = default;
  TransferAgent(const TransferAgent&) = delete;
  TransferAgent& operator=(const TransferAgent&) = delete;

  // This agent's name (AgentOptions::name).
  virtual const std::string& name() const = 0;
  // Backend name: "ucx" or "tcp".
  virtual const char* backend() const = 0;

  // Registers [base, base + bytes) so that peers may write into it (and, for ucx, so that it is
  // pinned for fast local reads). Regions registered later need a new metadata() exchange.
  virtual RegionId register_memory(void* base, size_t bytes,
                                   MemoryKind kind = MemoryKind::kHost) = 0;
  // Forgets a region; peers' later writes into it fail. Unknown ids throw kInvalidArgument.
  virtual void deregister_memory(RegionId region) = 0;

  // Printable blob (JSON; safe to put in an HTTP body) with everything a peer needs to reach this
  // agent: name, backend, address (UCP worker address / tcp host:port), registered regions with
  // their remote keys. Take it after registering memory.
  virtual std::string metadata() const = 0;
  // Adds or replaces (same name) a peer from its metadata(); throws kInvalidArgument on a blob of
  // another backend or a malformed blob. Replacing re-connects and fails the peer's pending writes.
  virtual void add_remote(const std::string& peer_name, const std::string& metadata) = 0;
  // Forgets a peer; its pending writes fail with "peer removed". Unknown names are ignored.
  virtual void remove_remote(const std::string& peer_name) = 0;

  // Starts writing `ops` to `peer`, then delivers `notify` to the peer after all bytes landed
  // (nothing is delivered when `notify` is empty). Adjacent ops are merged. Throws kInvalidArgument
  // for an unknown peer, an op outside the peer's exported regions, or a notify longer than
  // kMaxNotificationBytes; network failures are reported by poll(), never thrown.
  virtual TransferHandle write(const std::string& peer, std::span<const WriteOp> ops,
                               std::string notify) = 0;
  // Current state of a transfer. A dead or unreachable peer gives kFailed within opts.timeout.
  virtual TransferStatus poll(TransferHandle handle) = 0;
  // Blocks until the transfer is no longer pending or `timeout` passes; returns poll().
  virtual TransferStatus wait(TransferHandle handle, std::chrono::milliseconds timeout) = 0;
  // Stops a pending transfer: bytes may have partly landed, and no notification is sent unless it
  // was already on its way; poll() then gives kFailed "cancelled". No-op on a finished transfer.
  virtual void cancel(TransferHandle handle) = 0;
  // Frees a transfer's bookkeeping (cancelling it if pending); the handle becomes invalid.
  virtual void release(TransferHandle handle) = 0;

  // Takes every notification received so far, oldest first.
  virtual std::vector<Notification> take_notifications() = 0;
  // Like take_notifications(), but waits up to `timeout` for at least one.
  virtual std::vector<Notification> wait_notifications(std::chrono::milliseconds timeout) = 0;

 protected:
  TransferAgent() = default;
};

// Makes an agent. backend: "ucx", "nixl" (our UCX agent, the SGLang flag's spelling) or "tcp".
// "mooncake" throws kUnimplemented; any other name throws kInvalidArgument naming
// --disaggregation-transfer-backend.
std::unique_ptr<TransferAgent> make_transfer_agent(const std::string& backend,
                                                   const AgentOptions& opts);

// Sorts nothing; merges each op into the previous one when both its local and remote ranges
// continue the previous op's exactly. Exposed for tests.
std::vector<WriteOp> merge_adjacent_ops(std::span<const WriteOp> ops);

}  // namespace wideserve::transfer
