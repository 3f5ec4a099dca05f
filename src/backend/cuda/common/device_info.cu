#include "backend/cuda/common/device_info.h"

#include <cuda_runtime.h>

#include <string>

namespace wideserve::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

std::string describe_devices() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) return std::string("no device: ") + cudaGetErrorString(err);
  std::string out = std::to_string(n) + " device(s)";
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    out += "\n  [" + std::to_string(i) + "] " + p.name + ", sm_" + std::to_string(p.major) +
           std::to_string(p.minor) + ", " + std::to_string(p.totalGlobalMem >> 20) + " MiB";
  }
  return out;
}

std::string lost_device_error() {
  if (cudaDeviceSynchronize() == cudaSuccess) return {};
  (void)cudaGetLastError();  // a non-sticky error ends here; a sticky one is returned again
  const cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) return {};
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

}  // namespace wideserve::cuda
