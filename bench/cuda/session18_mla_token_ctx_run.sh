#!/usr/bin/env bash
# Device call (session 18): the one-token attention core on and off at V2-Lite batch 1 with 512
# and 2048 cached tokens (the model takes it up to a context bound of 2048), interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
for ctx in 512 2048; do
  v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1 --context $ctx"
  decode_ab 2 "on$ctx=model_step_bench $v2 --mla-token on" "off$ctx=model_step_bench $v2 --mla-token off"
done
