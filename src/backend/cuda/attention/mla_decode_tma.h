// Internal to the MLA kernels: the decode kernel with the query in registers and TMA tile loads
// ("v6", mla_decode_tma.cu) that launch_mla_decode runs for MlaDecodeKernel::kV6 where it can.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention/mla.h"

namespace wideserve::cuda {

// Heads a multiple of 64, pages of a multiple of 32 rows (a 32-row tile never spans two pages).
bool mla_decode_tma_supported(const MlaAttentionParams& p);
// Same contract as launch_mla_decode (params, workspace, outputs); unsupported shapes throw.
void launch_mla_decode_tma(const MlaAttentionParams& p, cudaStream_t s);

}  // namespace wideserve::cuda
