#!/usr/bin/env bash
# Device call (session 18): W_UK asked into L2 by the q/kv GEMV pair launch for the one-token
# attention core (new: a patch of gemm_gemv.cu and cuda_model.cpp, measured equal and not kept)
# against not (prev, ad8ccd5's binary), interleaved, three rounds; the new binary's phase stamps.
# Pack first (here):
#   scripts/device_pack.sh build-cuda bench/model_step_bench bench/prev_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "new=model_step_bench $v2"
step stamps 100 model_step_bench $v2 --mla-token-stamps
grep -E "^\| [a-zA-Z]|MHz" "$out/stamps.log" | head -20
