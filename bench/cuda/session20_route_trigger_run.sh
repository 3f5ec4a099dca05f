#!/usr/bin/env bash
# Device call (session 20): where the router + routing launch releases the routed up launch
# (pdl_launch_dependents): after its wait (main, prev), after the cluster barrier (tsync), or at
# CTA 0's end (tend), so that the up launch's waiting CTAs do not hold the SMs the branch's
# cuBLASLt gate_up wants meanwhile. V2-Lite decode at batch 1-2, interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda bench/prev_model_step_bench \
#   bench/tsync_model_step_bench bench/tend_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "tsync=tsync_model_step_bench $v2" \
  "tend=tend_model_step_bench $v2"
