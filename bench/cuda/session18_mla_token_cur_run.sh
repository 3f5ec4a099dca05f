#!/usr/bin/env bash
# Device call (session 18): the token's own row as one extra score beside the MMA tiles and the
# rope angles after the wait (new) against the previous commit's binary (prev), interleaved; the
# kernel's tests and the model's first.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
export GTEST_FILTER='MlaToken*:CudaDecodeGemvModel*:CudaOps.MlaRopePrep*'
step gpu_tests 200 backend_cuda_tests
unset GTEST_FILTER
grep -E "FAILED|Failure|PASSED|mla-token" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "prev=prev_model_step_bench $v2" "new=model_step_bench $v2"
step stamps 100 model_step_bench $v2 --mla-token-stamps
grep -E "^\| [a-zA-Z]|MHz" "$out/stamps.log" | head -20
