// Error checks for .cu files. nvcc cannot compile fmt's consteval format strings, so this header
// does not include common/check.h: the macros call plain functions (cuda_check.cpp) that throw the
// same wideserve::Error with its code and file:line. Build messages with std::to_string.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

namespace wideserve::cuda::detail {
[[noreturn]] void throw_cuda(const char* file, int line, const char* expr, cudaError_t err);
[[noreturn]] void throw_cublas(const char* file, int line, const char* expr, cublasStatus_t st);
// kInvalidArgument (bad_arg) or kInternal: a failed shape or invariant check in a launcher.
[[noreturn]] void throw_check(const char* file, int line, const char* expr, bool bad_arg,
                              const std::string& msg);
}  // namespace wideserve::cuda::detail

#define WS_CUDA_CHECK(expr)                                                           \
  do {                                                                                \
    cudaError_t ws_cuda_err_ = (expr);                                                \
    if (ws_cuda_err_ != cudaSuccess)                                                  \
      ::wideserve::cuda::detail::throw_cuda(__FILE__, __LINE__, #expr, ws_cuda_err_); \
  } while (0)

// After a kernel launch: the launch configuration error, if any.
#define WS_CUDA_CHECK_LAUNCH() WS_CUDA_CHECK(cudaGetLastError())

#define WS_CUBLAS_CHECK(expr)                                                            \
  do {                                                                                   \
    cublasStatus_t ws_cublas_st_ = (expr);                                               \
    if (ws_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                          \
      ::wideserve::cuda::detail::throw_cublas(__FILE__, __LINE__, #expr, ws_cublas_st_); \
  } while (0)

// WS_CUDA_REQUIRE(cond, std::string msg): a launcher's argument check (kInvalidArgument).
#define WS_CUDA_REQUIRE(cond, msg)                                                    \
  do {                                                                                \
    if (!(cond)) [[unlikely]]                                                         \
      ::wideserve::cuda::detail::throw_check(__FILE__, __LINE__, #cond, true, (msg)); \
  } while (0)

// WS_CUDA_ASSERT(cond, std::string msg): an internal invariant (kInternal).
#define WS_CUDA_ASSERT(cond, msg)                                                      \
  do {                                                                                 \
    if (!(cond)) [[unlikely]]                                                          \
      ::wideserve::cuda::detail::throw_check(__FILE__, __LINE__, #cond, false, (msg)); \
  } while (0)
