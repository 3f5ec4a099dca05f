#!/usr/bin/env bash
# Device call (session 12, closing): every kernel of a V2-Lite batch-1 decode step (two layers:
# one dense, one MoE; ncu, one metric, warm caches, eager, clocks left alone) with the final tree,
# for docs/cuda_backend.md's "What is left at batch 1".
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session12_profile_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step ncu_v2lite_b1 200 "$NCU" --clock-control none --cache-control none --csv \
  --metrics gpu__time_duration.sum model_step_bench --preset v2-lite --layers 2 --reps 1 \
  --prefills 1 --batches 1 --cuda-graph-max-bs 0
grep -E '^"' "$out/ncu_v2lite_b1.log" | awk -F'","' '{print $5" | "$NF}' | tail -40
