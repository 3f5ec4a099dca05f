// The value of a worker's etcd key: WorkerInfo, load and draining flag as JSON (layout in
// docs/discovery.md), with the protocol version so that mismatched binaries are refused clearly.
#pragma once

#include <string>
#include <string_view>

#include "runtime/messages.h"

namespace wideserve::runtime {

// Every worker key starts with this.
inline constexpr const char* kEtcdWorkerPrefix = "/services/wideserve/workers/";

// The key of one worker.
std::string etcd_worker_key(const std::string& instance_id);

// What a worker's key holds.
struct WorkerRecord {
  WorkerInfo info;
  WorkerLoad load;
  bool draining = false;
};

// JSON of a worker's key.
std::string encode_worker_record(const WorkerRecord& r);
// Throws Error(kDataLoss) on malformed JSON, a missing field or another protocol version.
WorkerRecord decode_worker_record(std::string_view json);

}  // namespace wideserve::runtime
