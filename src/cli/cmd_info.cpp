// `wideserve info`: build configuration and visible accelerators.
#include <cstdio>

#include "cli/command.h"
#include "common/thread_pool.h"
#ifdef WIDESERVE_HAVE_CUDA
#include "backend/cuda/common/device_info.h"
#endif

namespace wideserve::cli {
namespace {
WS_REGISTER_COMMAND("info", "Print build configuration and visible devices", [](CLI::App&) {
  return [] {
    std::printf("wideserve 0.1.0\n");
    std::printf("cpu threads: %d\n", global_thread_pool().num_threads());
#ifdef WIDESERVE_HAVE_CUDA
    std::printf("cuda: built for sm_90a; %s\n", cuda::describe_devices().c_str());
#else
    std::printf("cuda: not built (-DWIDESERVE_CUDA=OFF or no nvcc)\n");
#endif
    return 0;
  };
});
}  // namespace
}  // namespace wideserve::cli
