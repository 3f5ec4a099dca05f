#!/usr/bin/env bash
# Device call (session 15): the batch-1 chain changes found by the kernel trace (rank routing,
# MLA split combine with its loads at once, rope angles before pdl_wait): GPU suite, then old
# (main) vs new decode steps interleaved, and the rank routing switched off (--moe-path small).
# The call also ran --branch-priority off; that flag (shared-expert branch at top priority, no
# gain) is on the branch session15-shared-pair.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/old_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session15_batch1_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
v3="--preset v3 --layers 4 --fp8 --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
for r in 1 2; do
  step old_v2_$r 100 old_model_step_bench $v2
  step new_v2_$r 100 model_step_bench $v2
  step new_v2_small_$r 100 model_step_bench $v2 --moe-path small
  for f in old_v2_$r new_v2_$r new_v2_small_$r; do
    echo "$f: $(grep -E "^\| [12] \| 1024" "$out/$f.log" | tr '\n' ' ')"
  done
done
step old_v3 100 old_model_step_bench $v3
step new_v3 100 model_step_bench $v3
for f in old_v3 new_v3; do echo "$f: $(grep -E "^\| [12] \| 1024" "$out/$f.log" | tr '\n' ' ')"; done
