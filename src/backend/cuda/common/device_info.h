// Queries the CUDA runtime for visible devices (name, memory, compute capability).
#pragma once

#include <string>

namespace wideserve::cuda {

// Number of visible CUDA devices; 0 when no driver or device is present.
int device_count();

// One line per device, or the CUDA error that explains why none is visible.
std::string describe_devices();

}  // namespace wideserve::cuda
