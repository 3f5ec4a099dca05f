// A small etcd v3 client over etcd's JSON/HTTP gateway (POST /v3/...; keys and values base64):
// the lease, KV and watch calls that discovery needs. Several endpoints are tried in order; the
// one that answered last is tried first next time.
#pragma once

#include "common/base64.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/check.h"
#include "runtime/etcd_http.h"

namespace wideserve::runtime {

// One etcd client URL's address.
struct EtcdEndpoint {
  std::string host;
  uint16_t port = 2379;
};

// One key-value pair as etcd stores it.
struct EtcdKv {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

// A range answer: the pairs and the store revision they were read at.
struct EtcdRange {
  int64_t revision = 0;
  std::vector<EtcdKv> kvs;
};

// etcd answered with an error (as opposed to not answering). grpc_code is gRPC's status code
// (5 = NotFound, e.g. "requested lease not found"; 14 = Unavailable).
class EtcdError : public Error {
 public:
  EtcdError(ErrorCode code, int grpc_code, const std::string& what)
      : Error(code, what), grpc_code_(grpc_code) {}
  int grpc_code() const { return grpc_code_; }

 private:
  int grpc_code_;
};

// Base64 as etcd's gateway encodes bytes (common/base64.h); decoding is lenient and bad input
// from the server throws Error(kDataLoss).
using wideserve::base64_encode;
inline std::string base64_decode(std::string_view in) {
  return wideserve::base64_decode(in, /*strict=*/false, ErrorCode::kDataLoss);
}
// The range_end that makes [prefix, range_end) every key starting with `prefix`.
std::string etcd_prefix_end(std::string prefix);

// Unary etcd calls; one thread at a time per client.
class EtcdClient {
 public:
  using Clock = std::chrono::steady_clock;

  // `timeout` bounds one attempt at one endpoint; `wake_fd` (an eventfd or -1) readable aborts
  // a call in progress (a stopping thread).
  explicit EtcdClient(std::vector<EtcdEndpoint> endpoints,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(3000),
                      int wake_fd = -1);
  EtcdClient(const EtcdClient& other);

  // POSTs `req` to `path` (e.g. "/v3/kv/put") trying every endpoint; returns the answer (a
  // streamed answer's "result" unwrapped). Throws Error(kUnavailable) when no endpoint answers,
  // EtcdError when etcd answers with an error.
  nlohmann::json call(const std::string& path, const nlohmann::json& req);

  // A new lease; returns its id.
  int64_t lease_grant(int64_t ttl_s);
  // Renews a lease once; returns its TTL, <= 0 when etcd no longer knows the lease.
  int64_t lease_keepalive(int64_t lease_id);
  // Revokes a lease (deleting its keys); an unknown lease is not an error.
  void lease_revoke(int64_t lease_id);
  // Puts key=value (attached to `lease_id` unless 0); returns the new store revision.
  int64_t put(const std::string& key, const std::string& value, int64_t lease_id = 0);
  // Every key under `prefix`.
  EtcdRange range_prefix(const std::string& prefix);
  // Deletes one key; returns how many were deleted (0 or 1).
  int64_t delete_key(const std::string& key);

  // Opens a streaming POST (a watch) on the first endpoint that accepts it; throws like call().
  std::unique_ptr<HttpConnection> open_stream(const std::string& path, const nlohmann::json& req,
                                              int wake_fd);

  const std::vector<EtcdEndpoint>& endpoints() const { return endpoints_; }
  // "host:port" of the endpoint tried first now.
  std::string current_endpoint() const;

 private:
  std::vector<EtcdEndpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  int wake_fd_;
  std::atomic<size_t> preferred_{0};
};

// One watch on every key under a prefix, from a revision on; events arrive as etcd sends them.
class EtcdWatch {
 public:
  struct Event {
    bool deleted = false;  // DELETE (the key's value is empty then); otherwise PUT
    EtcdKv kv;
  };

  // Opens the watch and waits for etcd to confirm it. `wake_fd` readable aborts any wait.
  EtcdWatch(EtcdClient& client, const std::string& prefix, int64_t start_revision, int wake_fd);

  // Blocks (no deadline: TCP keepalives catch a dead peer) until etcd sends the next events.
  // Throws Error(kUnavailable) when the stream breaks or etcd cancels the watch (e.g. its start
  // revision was compacted): the caller starts over with a fresh range.
  std::vector<Event> next();

  const std::string& peer() const { return conn_->peer(); }

 private:
  nlohmann::json next_message();

  std::unique_ptr<HttpConnection> conn_;
  std::string pending_;  // received body bytes not yet split into messages
};

}  // namespace wideserve::runtime
