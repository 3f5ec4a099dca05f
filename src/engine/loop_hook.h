// Work an engine loop does besides scheduling: the disaggregation coordinators (prefill: wait for
// the decode side's pages, send KV after the forward; decode: reserve pages, wait for KV, then
// decode) plug in here. Every method runs on the engine thread, between steps.
#pragma once

#include <vector>

#include "engine/engine_core.h"

namespace wideserve::engine {

class LoopHook {
 public:
  virtual ~LoopHook() = default;
  // A new request; returns true when the hook takes it over (it then adds it to the core itself,
  // or answers it through `out` in poll()).
  virtual bool intercept(NewRequest& r, EngineCore& core, std::vector<RequestOutput>& out) = 0;
  // Abort of a request the hook may hold; returns true when it handled the abort entirely.
  virtual bool abort(uint64_t id, EngineCore& core, std::vector<RequestOutput>& out) = 0;
  // Advances queues and transfers; may add requests to the core and emit outputs.
  virtual void poll(EngineCore& core, std::vector<RequestOutput>& out) = 0;
  // Sees a step's outputs before delivery; may swallow or change them.
  virtual void on_outputs(EngineCore& core, std::vector<RequestOutput>& outs) = 0;
  // Whether the hook still holds the request (its final output is yet to come from the hook).
  virtual bool owns(uint64_t id) const = 0;
  // Whether the loop must keep polling although the core is idle.
  virtual bool busy() const = 0;
  // Counts for load reports (queued in the hook, waiting for transfers).
  virtual int64_t queued() const = 0;
};

}  // namespace wideserve::engine
