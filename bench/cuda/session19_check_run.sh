#!/usr/bin/env bash
# Session 19: the whole GPU suite after the small MoE's down launch reads only the residual (not
# the branch's shared output) before its wait, and the V2-Lite batch-1/2 steps against the build
# before the early reads (prev), interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests \
#   bench/model_step_bench bench/prev_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_check_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure|Expected|Which is|tests ran|PASSED" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "prev=prev_model_step_bench $v2" "new=model_step_bench $v2"
