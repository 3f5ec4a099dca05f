#!/usr/bin/env bash
# Device call (session 18): the per-CTA timeline (trace build) of a V2-Lite batch-1 step with the
# clustered attention core (mla_token.h) on and off.
# Pack first (here):
#   scripts/device_pack.sh build-cuda bench/model_step_bench bench/trace_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1"
for m in on off; do
  step trace_$m 100 trace_model_step_bench $v2 --trace "$out/$m" --mla-token $m
  grep -E "^\||trace" "$out/trace_$m.log" | head -30
done
