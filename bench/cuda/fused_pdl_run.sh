#!/usr/bin/env bash
# Session 7 device call: the GPU test suite with the fused launches and PDL, then decode steps
# with both on (default), PDL off, and both off, side by side in one call, plus the ncu kernel
# list of a V2-Lite 4-layer and a V3 batch-1 step (warm caches) to see what each launch costs now.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/fused_pdl_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 240 backend_cuda_tests ${GTEST_FILTER:+--gtest_filter=$GTEST_FILTER}
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -30
v2="--preset v2-lite --reps 10 --prefills 2048 --batches ${V2_BATCHES:-1,2,4,32,128,256}"
v3="--preset v3 --layers 4 --fp8 --reps 10 --prefills 2048 --batches ${V3_BATCHES:-1,2,4,32,128,256}"
for variant in "on:" "nopdl:--pdl off" "off:--pdl off --fuse-ops off"; do
  tag=${variant%%:*}
  args=${variant#*:}
  step "step_v2lite_$tag" 90 model_step_bench $v2 $args
  step "step_v3_$tag" 90 model_step_bench $v3 $args
done
for f in "$out"/step_*.log; do
  echo "--- $(basename "$f")"
  grep -E "^\| [0-9]|kernels:|bandwidth" "$f"
done
if [ -n "${PROFILE:-}" ]; then
  step ncu_v2lite4_b1 150 "$NCU" --clock-control none --cache-control none --csv \
    --metrics gpu__time_duration.sum model_step_bench --reps 1 --prefills 1 --cuda-graph-max-bs 0 \
    --preset v2-lite --layers 4 --batches 1
fi
