#!/usr/bin/env bash
# Session 9 device call, the tree at the end of the session: v5 in the FlashAttention-3 order
# with Q loaded by cp.async, the vectorized SiLU-and-mul with its fused FP8 copy for FP8 down
# projections, the vectorized residual add and the MoE combine with its loads issued up front.
# Smoke test first, then the whole GPU test suite, mla_bench, the decode steps of both models,
# and (NCU_STEP=1) ncu per-kernel times of an eager V3 batch-256 step. Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/mla_bench \
#     bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session9_final_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke_v5 60 backend_cuda_tests --gtest_filter='*MlaDecode.ManyHeads/v5*'
grep -q "rc=0" "$out/smoke_v5.log" || exit 1
step gpu_tests 330 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
step mla_bench 60 mla_bench --kernel v4v5 --heads 128
grep -E "copy|decode" "$out/mla_bench.log"
step v3_step 90 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
  --batches 1,32,128,256
grep -E "^\| [0-9]|bandwidth" "$out/v3_step.log"
step v2lite_step 90 model_step_bench --preset v2-lite --reps 20 --prefills 1 \
  --batches 1,32,128,256
grep -E "^\| [0-9]|bandwidth" "$out/v2lite_step.log"
if [ -n "${NCU_STEP:-}" ] && [ -n "$NCU" ]; then
  step ncu_v3_b256 150 "$NCU" --clock-control none --metrics gpu__time_duration.sum \
    --print-summary per-kernel model_step_bench --reps 1 --prefills 1 --cuda-graph-max-bs 0 \
    --preset v3 --layers 4 --fp8 --batches 256
fi
