// Internal to the MLA kernels: the wgmma decode kernel ("v5", mla_decode_wgmma.cu) that
// launch_mla_decode runs for MlaDecodeKernel::kV5 when the head count allows it.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention/mla.h"

namespace wideserve::cuda {

// Heads a multiple of 64 (one CTA per token x 64 heads x KV split).
bool mla_decode_wgmma_supported(const MlaAttentionParams& p);
// What launch_mla_decode(kV5) runs it for: mla_wgmma_preferred (mla_plan.h) of p's sizes.
bool mla_decode_wgmma_preferred(const MlaAttentionParams& p);
// Same contract as launch_mla_decode (params, workspace, outputs); unsupported heads throw.
void launch_mla_decode_wgmma(const MlaAttentionParams& p, cudaStream_t s);

}  // namespace wideserve::cuda
