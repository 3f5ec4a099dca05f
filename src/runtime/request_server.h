// Worker side of the request plane: a ZeroMQ ROUTER on its own thread that receives
// GenerateRequest/AbortRequest from frontends and streams GenerateOutput back.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/messages.h"
#include "runtime/zmq_util.h"

namespace wideserve::runtime {

// One request as the worker sees it: which frontend connection sent it, and its id there.
struct PeerRequest {
  std::string peer;  // ZeroMQ routing id of the frontend's DEALER (binary)
  uint64_t request_id = 0;
  bool operator==(const PeerRequest&) const = default;
};

// Hash of a PeerRequest (also available as std::hash<PeerRequest>).
struct PeerRequestHash {
  size_t operator()(const PeerRequest& k) const noexcept;
};

// Knobs of a RequestServer.
struct RequestServerOptions {
  std::string advertise_host = "127.0.0.1";  // replaces a wildcard bind host in endpoint()
  size_t max_batch_bytes = 1 << 20;          // outputs to one peer are packed up to this size
};

// ROUTER socket serving one worker. Handlers run on the server thread and must not block.
class RequestServer {
 public:
  struct Handlers {
    // A new request. If it throws, the server answers every sample with finish=kError.
    std::function<void(const PeerRequest& key, GenerateRequest req)> on_generate;
    // The frontend gave up on a request (the worker should abort it in its engine).
    std::function<void(const PeerRequest& key)> on_abort;
  };

  // Binds at once (throws Error(kUnavailable) when the address is taken or invalid).
  RequestServer(std::string bind_endpoint, Handlers h, RequestServerOptions opts = {});
  ~RequestServer();  // stop()
  RequestServer(const RequestServer&) = delete;
  RequestServer& operator=(const RequestServer&) = delete;

  // Address frontends connect to, e.g. tcp://127.0.0.1:41231.
  std::string endpoint() const { return endpoint_; }
  // Queues an output for the peer (thread-safe, never blocks on the network). Dropped after
  // stop() or when the peer is gone.
  void send(const PeerRequest& key, GenerateOutput out);
  // Stops the server thread and closes the socket (idempotent).
  void stop();
  // Frames dropped because they could not be decoded or were of an unexpected type.
  uint64_t dropped_frames() const { return dropped_frames_.load(); }

 private:
  void loop();
  void receive_ready();
  void handle_payload(const std::string& peer, std::string_view payload);
  void flush(std::vector<std::pair<PeerRequest, GenerateOutput>>& batch);
  void log_dropped(const std::string& peer, const std::string& why);

  Handlers handlers_;
  RequestServerOptions opts_;
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  std::string endpoint_;
  Wakeup wake_;
  std::mutex mu_;
  std::vector<std::pair<PeerRequest, GenerateOutput>> queue_;  // guarded by mu_
  bool stopping_ = false;                                      // guarded by mu_
  LogLimiter drop_log_;
  std::atomic<uint64_t> dropped_frames_{0};
  std::thread thread_;
};

}  // namespace wideserve::runtime

template <>
struct std::hash<wideserve::runtime::PeerRequest> : wideserve::runtime::PeerRequestHash {};
