#!/usr/bin/env bash
# Device call (session 20): how much of a V2-Lite decode step is the host's (staging, graph launch,
# the ids' copy back, the wait), and the step with one metadata copy and a pinned ids buffer
# (new) against main at 2c400fe (prev), interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "new=model_step_bench $v2"
step events 100 model_step_bench $v2 --step-events
grep -E "device span|^\| [0-9]" "$out/events.log"
step events_v3 100 model_step_bench --preset v3 --layers 4 --fp8 --reps 40 --prefills 1 \
  --cuda-graph-max-bs 256 --batches 1,2,32 --step-events
grep -E "device span|^\| [0-9]" "$out/events_v3.log"
