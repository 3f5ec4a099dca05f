#!/usr/bin/env bash
# Device call (session 18): the clustered attention core's phase stamps inside the V2-Lite
# batch-1 step (model_step_bench --mla-token-stamps), and the step with the next kernel's launch
# released after the absorbed query (new) against right after the wait (prev), interleaved.
# Pack first (here):
#   scripts/device_pack.sh build-cuda bench/model_step_bench bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256"
step in_model 100 model_step_bench $v2 --batches 1 --mla-token-stamps
grep -E "^\||MHz|phases" "$out/in_model.log" | head -30
for r in 1 2; do
  for b in prev_model_step_bench model_step_bench; do
    step ${b}_$r 100 $b $v2 --batches 1,2
    echo "$b/$r: $(grep -E "^\| [12] \| 1024" "$out/${b}_$r.log" | tr '\n' ' ')"
  done
  step c16_$r 100 model_step_bench $v2 --batches 1,2 --mla-token 16
  echo "c16/$r: $(grep -E "^\| [12] \| 1024" "$out/c16_$r.log" | tr '\n' ' ')"
  step rel2_$r 100 env WS_MLA_TOKEN_RELEASE=2 model_step_bench $v2 --batches 1,2
  echo "rel2/$r: $(grep -E "^\| [12] \| 1024" "$out/rel2_$r.log" | tr '\n' ' ')"
done
