// Frontend side of the request plane: one DEALER per worker endpoint, all driven by one I/O
// thread. Streams each request's outputs to its handler and guarantees every sample an end.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "runtime/messages.h"
#include "runtime/zmq_util.h"

namespace wideserve::runtime {

// Receives every output of one request, in order, on the client thread; must not block.
using OutputHandler = std::function<void(const engine::RequestOutput&)>;

// Knobs of a RequestClient.
struct RequestClientOptions {
  // After abort(), how long to wait for the worker's final outputs before ending the request
  // locally with finish=kAbort.
  std::chrono::milliseconds abort_grace{5000};
};

// How long aborts sent to a lost worker may wait in the closed socket for it to come back.
inline constexpr std::chrono::milliseconds kAbortLinger{2000};

// Thread-safe client of many workers. Handlers may call back into the client.
class RequestClient {
 public:
  explicit RequestClient(RequestClientOptions opts = {});
  // Stops the thread; requests still in flight get finish=kError "request client stopped".
  ~RequestClient();
  RequestClient(const RequestClient&) = delete;
  RequestClient& operator=(const RequestClient&) = delete;

  // Sends a request (connecting to the endpoint if needed). The request ends, and the handler is
  // dropped, when all params.n samples have delivered an output with finish != kNone; every
  // sample index gets exactly one such output. A kError output ends the whole request: every
  // other open sample gets the same error at once (and the worker is told to abort). Throws
  // Error(kInvalidArgument) when the id is already in flight on that endpoint.
  void generate(const std::string& endpoint, GenerateRequest req, OutputHandler on_output);
  // Asks the worker to stop the request; its final outputs (finish=kAbort) still reach the
  // handler, or are made up locally after abort_grace. Unknown ids are ignored.
  void abort(const std::string& endpoint, uint64_t request_id);
  // The worker is gone: every open sample of every request on the endpoint gets one final output
  // with finish=kError, error=reason and worker_lost=true (on the client thread), and the
  // connection is closed after one abort per request (a stalled worker that resumes drops them).
  // A later generate() to the endpoint connects afresh.
  void fail_endpoint(const std::string& endpoint, const std::string& reason);
  // Requests in flight on the endpoint.
  size_t inflight(const std::string& endpoint) const;
  // Frames from workers dropped as undecodable, unexpected or for unknown requests.
  uint64_t dropped_frames() const;

 private:
  struct Request {
    uint64_t id = 0;
    OutputHandler handler;
    std::vector<bool> open;  // per sample index; guarded by mu_
    int32_t open_count = 0;  // guarded by mu_
    bool aborted = false;    // guarded by mu_
  };
  using RequestPtr = std::shared_ptr<Request>;
  struct Endpoint {
    std::unordered_map<uint64_t, RequestPtr> requests;
  };
  // Work for the I/O thread, in order.
  struct SendCmd {
    std::string endpoint;
    std::string payload;
  };
  struct FailCmd {
    std::string endpoint;
    std::vector<RequestPtr> requests;
    std::string reason;
    engine::FinishReason finish;
  };
  using Command = std::variant<SendCmd, FailCmd>;

  void loop();
  void run_commands(std::vector<Command>& cmds);
  zmq::socket_t* socket_for(const std::string& endpoint);
  // Before closing a lost worker's socket: one AbortRequest per failed request, with a linger.
  void abort_on_close(const std::string& endpoint, const std::vector<RequestPtr>& requests);
  void close_socket(const std::string& endpoint);
  void receive(const std::string& endpoint, zmq::socket_t& s);
  void deliver(const std::string& endpoint, const engine::RequestOutput& out);
  void end_open_samples(const std::vector<RequestPtr>& reqs, engine::FinishReason finish,
                        const std::string& error, bool worker_lost = false);
  void expire_aborts();
  void push(Command c);
  void log_dropped(const std::string& endpoint, const std::string& why);

  RequestClientOptions opts_;
  zmq::context_t ctx_{1};
  Wakeup wake_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Endpoint> endpoints_;  // guarded by mu_
  // Pending abort deadlines -> (endpoint, id); guarded by mu_.
  std::multimap<std::chrono::steady_clock::time_point, std::pair<std::string, uint64_t>> aborts_;
  std::vector<Command> commands_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  uint64_t dropped_frames_ = 0;    // guarded by mu_

  std::map<std::string, zmq::socket_t> sockets_;  // I/O thread only
  bool sockets_changed_ = true;                   // I/O thread only
  LogLimiter drop_log_;                           // I/O thread only
  std::thread thread_;
};

}  // namespace wideserve::runtime
