#!/usr/bin/env bash
# Device call (session 16): the router GEMV and the rank routing in one clustered launch
# (moe.h launch_moe_router_route). Its GPU tests and the model's, then old (main) vs new vs new
# with it off, interleaved, two rounds; V3 the same.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/old_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session16_router_route_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
export GTEST_FILTER='*Routing*:*CudaFixtureTest*:*CudaModel*'
step gpu_tests 300 backend_cuda_tests
unset GTEST_FILTER
grep -E "FAILED|Failure|PASSED" "$out/gpu_tests.log" | head -30
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
v3="--preset v3 --layers 4 --fp8 --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
for r in 1 2; do
  step old_$r 100 old_model_step_bench $v2
  step new_$r 100 model_step_bench $v2
  step off_$r 100 model_step_bench $v2 --router-route off
  for f in old_$r new_$r off_$r; do
    echo "$f: $(grep -E "^\| [12] \| 1024" "$out/$f.log" | tr '\n' ' ')"
  done
done
step v3_old 100 old_model_step_bench $v3
step v3_new 100 model_step_bench $v3
step v3_off 100 model_step_bench $v3 --router-route off
for f in v3_old v3_new v3_off; do echo "$f: $(grep -E "^\| [12] \| 1024" "$out/$f.log" | tr '\n' ' ')"; done
