#!/usr/bin/env bash
# Device call (session 16): after the router + routing launch took its logits output in
# MoeRouterRouteInputs (an API change after the closing call): the routing and model GPU tests,
# and V2-Lite / V3 decode steps at batch 1-2.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session16_verify_run.sh",
#           carry=[".devpack"], timeout_s=400)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
export GTEST_FILTER='*Routing*:*CudaFixtureTest*:*CudaModel*'
step gpu_tests 300 backend_cuda_tests
unset GTEST_FILTER
grep -E "FAILED|Failure|PASSED" "$out/gpu_tests.log" | head -20
step v2 100 model_step_bench --preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 \
  --batches 1,2
step v3 100 model_step_bench --preset v3 --layers 4 --fp8 --reps 30 --prefills 1 \
  --cuda-graph-max-bs 256 --batches 1,2
for f in v2 v3; do echo "$f: $(grep -E "^\| [12] \| 1024" "$out/$f.log" | tr '\n' ' ')"; done
