#!/usr/bin/env bash
# Device call (session 12): the BF16 small-MoE down launch with its first weight blocks requested
# before pdl_wait and 4 blocks in flight at one token. MoE and fixture GPU tests, then the fused
# small MoE (moe_bench --small) and V2-Lite decode steps with the previous binaries (old_*, built
# from main before the change) and the new ones in interleaved rounds, then the whole GPU suite.
# Pack first (here; old_* are copies of the binaries built from the previous moe_small.cu):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/moe_bench bench/old_model_step_bench bench/old_moe_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session12_moe_down_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke 200 backend_cuda_tests --gtest_filter='CudaMoeSmall*:Fixtures/*'
for rep in 1 2; do
  for v in old new; do
    bin=moe_bench
    [ "$v" = old ] && bin=old_moe_bench
    step "small_${v}_$rep" 60 "$bin" --small
    echo "moe_bench --small ($v):"
    grep -E "^\|" "$out/small_${v}_$rep.log" | head -14
  done
done
for rep in 1 2; do
  for v in old new; do
    bin=model_step_bench
    [ "$v" = old ] && bin=old_model_step_bench
    name="v2lite_${v}_$rep"
    step "$name" 100 "$bin" --preset v2-lite --reps 30 --prefills 1 --batches 1,2,4 \
      --cuda-graph-max-bs 4
    echo "V2-Lite ($v):"
    grep -E "^\| [0-9]" "$out/$name.log"
  done
done
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
