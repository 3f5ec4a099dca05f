#include "backend/cuda/common/cuda_check.h"

#include <string>

#include "common/check.h"

namespace wideserve::cuda::detail {

void throw_cuda(const char* file, int line, const char* expr, cudaError_t err) {
  ::wideserve::detail::throw_error(ErrorCode::kInternal, file, line, expr,
                                   std::string("CUDA error: ") + cudaGetErrorString(err));
}

void throw_cublas(const char* file, int line, const char* expr, cublasStatus_t st) {
  ::wideserve::detail::throw_error(ErrorCode::kInternal, file, line, expr,
                                   std::string("cuBLAS error: ") + cublasLtGetStatusString(st));
}

void throw_check(const char* file, int line, const char* expr, bool bad_arg,
                 const std::string& msg) {
  ::wideserve::detail::throw_error(bad_arg ? ErrorCode::kInvalidArgument : ErrorCode::kInternal,
                                   file, line, expr, msg);
}

}  // namespace wideserve::cuda::detail
