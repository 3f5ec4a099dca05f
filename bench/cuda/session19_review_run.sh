#!/usr/bin/env bash
# Session 19, after the review: mla_token's box count and position in one place each, o_proj's
# early read through GemmBf16Params::y_final and linear_residual. The kernels', GEMM's, MoE's and
# model's GPU tests, and one V2-Lite batch-1/2 step.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_review_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 200 backend_cuda_tests \
  --gtest_filter='MlaToken*:GemmBf16.*:*MoeSmall*:CudaDecodeGemvModel*:*Fixture*'
grep -E "FAILED|Failure|Expected|Which is|mla-token" "$out/gpu_tests.log" | head -20
decode_ab 1 "review=model_step_bench --preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
