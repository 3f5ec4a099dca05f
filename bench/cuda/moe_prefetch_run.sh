#!/usr/bin/env bash
# Session 7 device call: the fused small-batch MoE with its first weight batch issued before the
# staging (and, for shared experts, before pdl_wait): MoE and model GPU tests, moe_bench --small
# against its bytes floor, and decode steps at batch 1-4.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/moe_bench \
#   bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/moe_prefetch_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 240 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -30
step moe_small 120 moe_bench --small
grep -E "^\||floor|bandwidth" "$out/moe_small.log" | head -30
step step_v2lite 90 model_step_bench --preset v2-lite --reps 10 --prefills 1 --batches 1,2,4,32
step step_v3 90 model_step_bench --preset v3 --layers 4 --fp8 --reps 10 --prefills 1 --batches 1,2,4,256
for f in step_v2lite step_v3; do
  echo "--- $f"
  grep -E "^\| [0-9]|kernels:|bandwidth" "$out/$f.log"
done
