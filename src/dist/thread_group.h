// In-process process group: N ranks are N threads of this process sharing memory. Used by tests
// and by one-process multi-rank engines; semantics match the Gloo backend.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "dist/process_group.h"

namespace wideserve::dist {

// Returns the handles of ranks 0..n-1 of one new group; hand one to each rank's thread. A
// collective that waits longer than `timeout` for the other ranks throws Error(kUnavailable).
std::vector<std::unique_ptr<ProcessGroup>> make_thread_group(
    int n, std::chrono::milliseconds timeout = std::chrono::minutes(5));

}  // namespace wideserve::dist
