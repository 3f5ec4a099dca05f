#!/usr/bin/env bash
# Device call (session 20): the whole GPU suite with the shared experts as units of the fused
# launches at one BF16 token (the up launch's shared units first and unwaited), then V2-Lite and
# V3 decode at batch 1-2 against 2884d7e (prev), interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests \
#   bench/model_step_bench bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 400 backend_cuda_tests
grep -E "FAILED|Failure|Expected|Which is|tests ran|PASSED" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "new=model_step_bench $v2"
v3="--preset v3 --layers 4 --fp8 --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "v3prev=prev_model_step_bench $v3" "v3new=model_step_bench $v3"
