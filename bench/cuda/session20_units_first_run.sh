#!/usr/bin/env bash
# Device call (session 20): the shared experts as units of the fused launches (--shared-branch
# off) with the up launch's shared units first in its grid and run whole before its wait (new),
# against main at 2884d7e (prev) with the branch and with units; MoE and model tests first.
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench \
#   bench/prev_model_step_bench tests/backend_cuda_tests
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 300 backend_cuda_tests --gtest_filter='*CudaMoeSmall*:CudaDecodeGemvModel.*:CudaModel*'
grep -E "moe small|FAILED|Failure" "$out/tests.log" | head -20
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "prevunits=prev_model_step_bench $v2 --shared-branch off" \
  "units=model_step_bench $v2 --shared-branch off" "branch=model_step_bench $v2"
