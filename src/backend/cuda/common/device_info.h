// Queries the CUDA runtime for visible devices (name, memory, compute capability).
#pragma once

#include <string>

namespace wideserve::cuda {

// Number of visible CUDA devices; 0 when no driver or device is present.
int device_count();

// One line per device, or the CUDA error that explains why none is visible.
std::string describe_devices();

// After a failed step: empty when the current device still works, else the sticky error (an
// illegal address, a kernel fault) that makes every later CUDA call on it fail. Waits for the
// device; clears a non-sticky error.
std::string lost_device_error();

}  // namespace wideserve::cuda
