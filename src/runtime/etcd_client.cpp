#include "runtime/etcd_client.h"

#include <fmt/format.h>

#include <algorithm>

namespace wideserve::runtime {
namespace {

using json = nlohmann::json;

constexpr int kGrpcNotFound = 5;
constexpr int kGrpcDeadline = 4;
constexpr int kGrpcUnavailable = 14;

// The gateway writes int64 fields as JSON strings and leaves out zero values.
int64_t i64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return 0;
  if (it->is_string()) return std::stoll(it->get<std::string>());
  return it->get<int64_t>();
}

std::string b64_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || !it->is_string() ? std::string() : base64_decode(it->get<std::string>());
}

EtcdKv parse_kv(const json& j) {
  EtcdKv kv;
  kv.key = b64_field(j, "key");
  kv.value = b64_field(j, "value");
  kv.create_revision = i64(j, "create_revision");
  kv.mod_revision = i64(j, "mod_revision");
  kv.lease = i64(j, "lease");
  return kv;
}

// Unary errors are {"error","code","message"}; streamed ones {"error":{"grpc_code","message"}}.
[[noreturn]] void throw_etcd_error(const std::string& peer, int http_status, const json& j) {
  int grpc = 0;
  std::string msg;
  if (j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.is_object()) {
      grpc = e.value("grpc_code", 0);
      msg = e.value("message", "");
    } else {
      grpc = j.value("code", 0);
      msg = e.is_string() ? e.get<std::string>() : e.dump();
    }
  } else {
    msg = j.dump();
  }
  ErrorCode code = grpc == kGrpcNotFound                               ? ErrorCode::kNotFound
                   : grpc == kGrpcUnavailable || grpc == kGrpcDeadline ? ErrorCode::kUnavailable
                                                                       : ErrorCode::kInternal;
  throw EtcdError(code, grpc,
                  fmt::format("etcd {}: HTTP {}: {} (gRPC code {})", peer, http_status, msg, grpc));
}

}  // namespace

std::string etcd_prefix_end(std::string prefix) {
  // The last byte that is not 0xff, plus one, with everything after it dropped.
  while (!prefix.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(prefix.back());
    if (c < 0xff) {
      ++c;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// ---------------------------------------------------------------------------------------------
// EtcdClient

EtcdClient::EtcdClient(std::vector<EtcdEndpoint> endpoints, std::chrono::milliseconds timeout,
                       int wake_fd)
    : endpoints_(std::move(endpoints)), timeout_(timeout), wake_fd_(wake_fd) {
  WS_CHECK_ARG(!endpoints_.empty(), "etcd client without endpoints");
}

EtcdClient::EtcdClient(const EtcdClient& other)
    : endpoints_(other.endpoints_),
      timeout_(other.timeout_),
      wake_fd_(other.wake_fd_),
      preferred_(other.preferred_.load()) {}

std::string EtcdClient::current_endpoint() const {
  const EtcdEndpoint& e = endpoints_[preferred_ % endpoints_.size()];
  bool v6 = e.host.find(':') != std::string::npos;
  return fmt::format("{}{}{}:{}", v6 ? "[" : "", e.host, v6 ? "]" : "", e.port);
}

std::unique_ptr<HttpConnection> EtcdClient::open_stream(const std::string& path, const json& req,
                                                        int wake_fd) {
  const std::string body = req.dump();
  std::string errors;
  const size_t first = preferred_;
  for (size_t k = 0; k < endpoints_.size(); ++k) {
    const size_t i = (first + k) % endpoints_.size();
    const EtcdEndpoint& ep = endpoints_[i];
    try {
      auto start = Clock::now();
      auto conn = std::make_unique<HttpConnection>(
          ep.host, ep.port, start + std::min(timeout_, std::chrono::milliseconds(1000)), wake_fd);
      int status = conn->post(path, body, start + timeout_);
      if (status != 200) {
        std::string text = conn->read_body(start + timeout_);
        json j = json::parse(text, nullptr, false);
        try {
          throw_etcd_error(conn->peer(), status, j);
        } catch (const EtcdError& e) {
          // A member that has lost its quorum is as good as down: try the next one.
          if (e.code() != ErrorCode::kUnavailable) throw;
          errors += std::string(errors.empty() ? "" : "; ") + e.what();
          continue;
        }
      }
      preferred_ = i;
      return conn;
    } catch (const EtcdError&) {
      throw;
    } catch (const Error& e) {
      errors += std::string(errors.empty() ? "" : "; ") + e.what();
    }
  }
  WS_THROW(kUnavailable, "no etcd endpoint answered {}: {}", path, errors);
}

json EtcdClient::call(const std::string& path, const json& req) {
  auto conn = open_stream(path, req, wake_fd_);
  std::string text = conn->read_body(Clock::now() + timeout_);
  json j = json::parse(text, nullptr, false);
  WS_CHECK_CODE(kDataLoss, !j.is_discarded() && j.is_object(), "etcd {}: {} answered non-JSON: {}",
                conn->peer(), path, text.substr(0, 200));
  if (j.contains("error")) throw_etcd_error(conn->peer(), 200, j);
  // Streaming RPCs (lease keepalive) wrap each answer in {"result": ...}.
  if (j.contains("result") && j["result"].is_object()) return j["result"];
  return j;
}

int64_t EtcdClient::lease_grant(int64_t ttl_s) {
  json r = call("/v3/lease/grant", {{"TTL", std::to_string(ttl_s)}});
  int64_t id = i64(r, "ID");
  WS_CHECK_CODE(kDataLoss, id != 0, "etcd lease grant without an ID: {}", r.dump());
  return id;
}

int64_t EtcdClient::lease_keepalive(int64_t lease_id) {
  json r = call("/v3/lease/keepalive", {{"ID", std::to_string(lease_id)}});
  return i64(r, "TTL");
}

void EtcdClient::lease_revoke(int64_t lease_id) {
  try {
    call("/v3/lease/revoke", {{"ID", std::to_string(lease_id)}});
  } catch (const EtcdError& e) {
    if (e.grpc_code() != kGrpcNotFound) throw;
  }
}

int64_t EtcdClient::put(const std::string& key, const std::string& value, int64_t lease_id) {
  json req = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease_id != 0) req["lease"] = std::to_string(lease_id);
  json r = call("/v3/kv/put", req);
  return r.contains("header") ? i64(r["header"], "revision") : 0;
}

EtcdRange EtcdClient::range_prefix(const std::string& prefix) {
  json r = call("/v3/kv/range", {{"key", base64_encode(prefix)},
                                 {"range_end", base64_encode(etcd_prefix_end(prefix))}});
  EtcdRange out;
  if (r.contains("header")) out.revision = i64(r["header"], "revision");
  WS_CHECK_CODE(kDataLoss, out.revision > 0, "etcd range without a revision: {}",
                r.dump().substr(0, 200));
  if (r.contains("kvs"))
    for (const json& kv : r["kvs"]) out.kvs.push_back(parse_kv(kv));
  return out;
}

int64_t EtcdClient::delete_key(const std::string& key) {
  json r = call("/v3/kv/deleterange", {{"key", base64_encode(key)}});
  return i64(r, "deleted");
}

// ---------------------------------------------------------------------------------------------
// EtcdWatch

EtcdWatch::EtcdWatch(EtcdClient& client, const std::string& prefix, int64_t start_revision,
                     int wake_fd) {
  json create = {{"key", base64_encode(prefix)},
                 {"range_end", base64_encode(etcd_prefix_end(prefix))},
                 {"start_revision", std::to_string(start_revision)}};
  conn_ = client.open_stream("/v3/watch", {{"create_request", create}}, wake_fd);
  json first = next_message();
  WS_CHECK_CODE(kUnavailable, first.value("created", false) && !first.value("canceled", false),
                "etcd {}: watch not created: {}", conn_->peer(), first.dump().substr(0, 300));
}

json EtcdWatch::next_message() {
  // The gateway sends one JSON object per line.
  for (;;) {
    size_t nl = pending_.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      json j = json::parse(line, nullptr, false);
      WS_CHECK_CODE(kUnavailable, !j.is_discarded() && j.is_object(),
                    "etcd {}: bad watch message: {}", conn_->peer(), line.substr(0, 200));
      if (j.contains("error")) {
        try {
          throw_etcd_error(conn_->peer(), 200, j);
        } catch (const EtcdError& e) {
          WS_THROW(kUnavailable, "watch failed: {}", e.what());
        }
      }
      return j.contains("result") ? j["result"] : j;
    }
    WS_CHECK_CODE(kUnavailable, pending_.size() < (64u << 20), "etcd {}: watch message too large",
                  conn_->peer());
    WS_CHECK_CODE(kUnavailable,
                  conn_->read_some(pending_, HttpConnection::Clock::time_point::max()),
                  "etcd {}: watch stream ended", conn_->peer());
  }
}

std::vector<EtcdWatch::Event> EtcdWatch::next() {
  for (;;) {
    json r = next_message();
    if (r.value("canceled", false)) {
      int64_t compact = i64(r, "compact_revision");
      WS_THROW(kUnavailable, "etcd {}: watch canceled{}: {}", conn_->peer(),
               compact ? fmt::format(" (revision compacted up to {})", compact) : "",
               r.value("cancel_reason", ""));
    }
    if (!r.contains("events")) continue;  // progress notifications
    std::vector<Event> out;
    for (const json& e : r["events"]) {
      Event ev;
      ev.deleted = e.value("type", "PUT") == "DELETE";
      if (e.contains("kv")) ev.kv = parse_kv(e["kv"]);
      out.push_back(std::move(ev));
    }
    return out;
  }
}

}  // namespace wideserve::runtime
