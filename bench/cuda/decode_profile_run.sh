#!/usr/bin/env bash
# One device call: where decode steps spend their time and why served V2-Lite at 256 concurrent
# requests lost throughput. ncu per-kernel durations (one metric, clocks left alone, eager steps,
# a 1-token prefill so every profiled kernel is decode-shaped) of V2-Lite BF16 at batch 1 and V3
# 4 layers FP8 at batch 256; then served V2-Lite at 256 with the default graph range (160) and
# with graphs up to 256, keeping the worker logs. Pack first (here):
#   scripts/device_pack.sh build-cuda wideserve bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/decode_profile_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
prof() {
  local name=$1
  shift
  step "$name" 150 "$NCU" --clock-control none --metrics gpu__time_duration.sum \
    --print-summary per-kernel model_step_bench --reps 1 --prefills 1 --cuda-graph-max-bs 0 "$@"
}
prof ncu_v2lite_b1 --preset v2-lite --batches 1
prof ncu_v3_b256 --preset v3 --layers 4 --fp8 --batches 256
ws=$(command -v wideserve)
export MODEL_ARGS="--preset v2-lite" HF_BATCHES=none
step served_v2lite_default 120 env LOG_TAG=default bash bench/cuda/served_bench.sh "$ws" 256
step served_v2lite_graph256 120 env LOG_TAG=graph256 WORKER_ARGS="--cuda-graph-max-bs 256" \
  bash bench/cuda/served_bench.sh "$ws" 256
grep -E "^==|Output token throughput|^P50|^P90" "$out"/served_v2lite_*.log
