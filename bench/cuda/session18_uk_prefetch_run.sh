#!/usr/bin/env bash
# Device call (session 18): W_UK asked into L2 by the q/kv GEMV pair launch for the one-token
# attention core (new) against not (prev, ad8ccd5's binary), interleaved, three rounds; the new
# binary's phase stamps.
# Pack first (here):
#   scripts/device_pack.sh build-cuda bench/model_step_bench bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
for r in 1 2 3; do
  for b in prev_model_step_bench model_step_bench; do
    step ${b}_$r 100 $b $v2
    echo "$b/$r: $(grep -E "^\| [12] \| 1024" "$out/${b}_$r.log" | tr '\n' ' ')"
  done
done
step stamps 100 model_step_bench $v2 --mla-token-stamps
grep -E "^\| [a-zA-Z]|MHz" "$out/stamps.log" | head -20
