#include "runtime/etcd_record.h"

#include <nlohmann/json.hpp>

#include "common/check.h"

namespace wideserve::runtime {
namespace {

using json = nlohmann::json;

const char* role_name(WorkerRole r) {
  switch (r) {
    case WorkerRole::kAggregated:
      return "aggregated";
    case WorkerRole::kPrefill:
      return "prefill";
    case WorkerRole::kDecode:
      return "decode";
  }
  return "unknown";
}

WorkerRole parse_role(const std::string& s) {
  if (s == "aggregated") return WorkerRole::kAggregated;
  if (s == "prefill") return WorkerRole::kPrefill;
  WS_CHECK_CODE(kDataLoss, s == "decode", "worker record: unknown role '{}'", s);
  return WorkerRole::kDecode;
}

template <typename T>
void read(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  WS_CHECK_CODE(kDataLoss, it != j.end(), "worker record: missing '{}'", key);
  try {
    out = it->get<T>();
  } catch (const json::exception& e) {
    WS_THROW(kDataLoss, "worker record: bad '{}': {}", key, e.what());
  }
}

}  // namespace

std::string etcd_worker_key(const std::string& instance_id) {
  return std::string(kEtcdWorkerPrefix) + instance_id;
}

std::string encode_worker_record(const WorkerRecord& r) {
  const WorkerInfo& w = r.info;
  json j = {
      {"protocol_version", kProtocolVersion},
      {"instance_id", w.instance_id},
      {"model_name", w.model_name},
      {"model_path", w.model_path},
      {"endpoint", w.endpoint},
      {"role", role_name(w.role)},
      {"context_length", w.context_length},
      {"page_size", w.page_size},
      {"kv_capacity_tokens", w.kv_capacity_tokens},
      {"vocab_size", w.vocab_size},
      {"dp_size", w.dp_size},
      {"reasoning_parser", w.reasoning_parser},
      {"tool_call_parser", w.tool_call_parser},
      {"bootstrap_host", w.bootstrap_host},
      {"bootstrap_port", w.bootstrap_port},
      {"kv_events_endpoint", w.kv_events_endpoint},
      {"kv_state_endpoint", w.kv_state_endpoint},
      {"draining", r.draining},
      {"load",
       {{"running", r.load.running},
        {"waiting", r.load.waiting},
        {"kv_pages_total", r.load.kv_pages_total},
        {"kv_pages_used", r.load.kv_pages_used},
        {"generated_tokens", r.load.generated_tokens},
        {"kv_pages_active", r.load.kv_pages_active}}},
  };
  if (r.load.ep.ranks > 0) {  // wide EP workers only
    const auto& e = r.load.ep;
    j["load"]["ep"] = {{"ranks", e.ranks},
                       {"layers", e.layers},
                       {"layer_imbalance", e.layer_imbalance},
                       {"forwards", e.forwards},
                       {"tokens_dispatched", e.tokens_dispatched},
                       {"bytes_moved", e.bytes_moved},
                       {"rebalances", e.rebalances}};
  }
  return j.dump();
}

WorkerRecord decode_worker_record(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  WS_CHECK_CODE(kDataLoss, !j.is_discarded() && j.is_object(),
                "worker record is not a JSON object");
  uint32_t version = 0;
  read(j, "protocol_version", version);
  WS_CHECK_CODE(kDataLoss, version == kProtocolVersion,
                "worker record has protocol version {}, this binary speaks {}", version,
                kProtocolVersion);
  WorkerRecord r;
  WorkerInfo& w = r.info;
  std::string role;
  read(j, "instance_id", w.instance_id);
  read(j, "model_name", w.model_name);
  read(j, "model_path", w.model_path);
  read(j, "endpoint", w.endpoint);
  read(j, "role", role);
  w.role = parse_role(role);
  read(j, "context_length", w.context_length);
  read(j, "page_size", w.page_size);
  read(j, "kv_capacity_tokens", w.kv_capacity_tokens);
  read(j, "vocab_size", w.vocab_size);
  read(j, "dp_size", w.dp_size);
  read(j, "reasoning_parser", w.reasoning_parser);
  read(j, "tool_call_parser", w.tool_call_parser);
  read(j, "bootstrap_host", w.bootstrap_host);
  read(j, "bootstrap_port", w.bootstrap_port);
  // Appended for KV routing: optional, so records of older workers still read.
  if (j.contains("kv_events_endpoint")) read(j, "kv_events_endpoint", w.kv_events_endpoint);
  if (j.contains("kv_state_endpoint")) read(j, "kv_state_endpoint", w.kv_state_endpoint);
  read(j, "draining", r.draining);
  json load;
  read(j, "load", load);
  WS_CHECK_CODE(kDataLoss, load.is_object(), "worker record: 'load' is not an object");
  read(load, "running", r.load.running);
  read(load, "waiting", r.load.waiting);
  read(load, "kv_pages_total", r.load.kv_pages_total);
  read(load, "kv_pages_used", r.load.kv_pages_used);
  read(load, "generated_tokens", r.load.generated_tokens);
  if (load.contains("kv_pages_active")) read(load, "kv_pages_active", r.load.kv_pages_active);
  if (load.contains("ep")) {
    const json& e = load["ep"];
    auto& x = r.load.ep;
    read(e, "ranks", x.ranks);
    read(e, "layers", x.layers);
    read(e, "layer_imbalance", x.layer_imbalance);
    read(e, "forwards", x.forwards);
    read(e, "tokens_dispatched", x.tokens_dispatched);
    read(e, "bytes_moved", x.bytes_moved);
    read(e, "rebalances", x.rebalances);
  }
  WS_CHECK_CODE(kDataLoss, !w.instance_id.empty() && !w.endpoint.empty(),
                "worker record without instance_id or endpoint");
  return r;
}

}  // namespace wideserve::runtime
