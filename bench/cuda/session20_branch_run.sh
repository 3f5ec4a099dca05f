#!/usr/bin/env bash
# Device call (session 20): V2-Lite batch 1-2 with the shared experts on the graph branch (on) and
# as units of the fused up and down launches (off), interleaved; then both traced (trace build).
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench bench/trace_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "branch=model_step_bench $v2" "units=model_step_bench $v2 --shared-branch off"
t="--preset v2-lite --reps 10 --prefills 1 --cuda-graph-max-bs 256 --batches 1"
step trace_units 100 trace_model_step_bench $t --trace "$out/units" --shared-branch off
grep -E "^\| [0-9]+ \| [a-z]|trace:" "$out/trace_units.log" | head -20
