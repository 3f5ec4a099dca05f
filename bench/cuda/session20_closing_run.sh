#!/usr/bin/env bash
# Closing device call (session 20): V2-Lite batch 1-2 with the dense layer's gate_up as a GEMV pair
# that makes the post-attention norm (default) and without (--dense-norm-gemv off), against
# 2884d7e (prev), interleaved; the decode table of both models; then the whole GPU suite.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests \
#   bench/model_step_bench bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "prev=prev_model_step_bench $v2" "new=model_step_bench $v2" \
  "dense_off=model_step_bench $v2 --dense-norm-gemv off"
decode_tables
step gpu_tests 400 backend_cuda_tests
grep -E "FAILED|Failure|Expected|Which is|tests ran|PASSED|dense-norm|norm-inside" \
  "$out/gpu_tests.log" | head -24
