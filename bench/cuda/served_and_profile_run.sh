#!/usr/bin/env bash
# One device call: served tokens/s through HTTP on V2-Lite (BF16) and V3 cut to 4 layers (FP8)
# dimensions next to HF transformers generate (grouped_mm experts), then where a decode step's time
# goes: ncu's per-kernel durations (one metric, clocks left alone) over eager decode steps at
# batch 1 and 256 on V3 dimensions. Pack first (here):
#   scripts/device_pack.sh build-cuda wideserve bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/served_and_profile_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
ws=$(command -v wideserve)
export MODEL_ARGS="--preset v3 --layers 4 --fp8"
step served_v3 180 bash bench/cuda/served_bench.sh "$ws" 64,256
export MODEL_ARGS="--preset v2-lite"
step served_v2lite 180 bash bench/cuda/served_bench.sh "$ws" 64,256
grep -E "^==|Output token throughput|^P50|^\| |experts" "$out"/served_v3.log "$out"/served_v2lite.log
for b in 1 256; do
  step "ncu_v3_b$b" 90 "$NCU" --clock-control none --metrics gpu__time_duration.sum \
    --print-summary per-kernel model_step_bench --preset v3 --layers 4 --fp8 --reps 1 \
    --batches $b --prefills 64 --cuda-graph-max-bs 0
done
for b in 1 256; do
  echo "--- ncu V3 4 layers FP8, eager decode batch $b (4 steps: 3 warm-up + 1)"
  grep -E "^  [^ ].*\(|gpu__time_duration.sum|Invocations" "$out/ncu_v3_b$b.log" | head -150
done
