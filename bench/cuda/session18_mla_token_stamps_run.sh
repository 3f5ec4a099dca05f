#!/usr/bin/env bash
# Device call (session 18): the clustered attention core's phase stamps inside the V2-Lite
# batch-1 step (model_step_bench --mla-token-stamps), and the step with the next kernel's launch
# released after the absorbed query (new) against right after the wait (prev) and with clusters
# of 16, interleaved. (The session's run also had a variant switched by an environment variable
# of an experiment build; docs/perf.md, session 18, has its table.)
# Pack first (here):
#   scripts/device_pack.sh build-cuda bench/model_step_bench bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256"
step in_model 100 model_step_bench $v2 --batches 1 --mla-token-stamps
grep -E "^\||MHz|phases" "$out/in_model.log" | head -30
decode_ab 2 "prev=prev_model_step_bench $v2 --batches 1,2" "new=model_step_bench $v2 --batches 1,2" \
  "c16=model_step_bench $v2 --batches 1,2 --mla-token 16"
