#include <atomic>

#include "backend/cuda/common/pdl.cuh"

namespace wideserve::cuda {
namespace {
std::atomic<bool> g_pdl{true};
}  // namespace

bool pdl_enabled() {
  return g_pdl.load(std::memory_order_relaxed);
}

void set_pdl_enabled(bool on) {
  g_pdl.store(on, std::memory_order_relaxed);
}

}  // namespace wideserve::cuda
