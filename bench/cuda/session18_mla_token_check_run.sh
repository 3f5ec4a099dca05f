#!/usr/bin/env bash
# Device call (session 18): the one-token attention core's tests and the model's after the
# latent row is also stored when the token does not see itself (seq_len <= position); the MoE
# tests after their bf16 helpers moved to gpu_test_util.h.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
export GTEST_FILTER='MlaToken*:CudaDecodeGemvModel*:CudaOps.MlaRopePrep*:*Moe*'
step gpu_tests 200 backend_cuda_tests
grep -E "FAILED|Failure|PASSED|mla-token|Expected|Which is|actual" "$out/gpu_tests.log" | head -20
