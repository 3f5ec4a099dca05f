#!/usr/bin/env bash
# Closing device call (session 19): the decode table of both models at batch 1-256 and the
# one-token launch's phase stamps in the V2-Lite batch-1 step, on the build whose whole GPU suite
# passed in session19_check_run.sh (194 of 194).
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_final_run.sh",
#           carry=[".devpack"], timeout_s=400)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
decode_tables
step stamps 100 model_step_bench --preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 \
  --batches 1 --mla-token-stamps
grep -E "^\| [a-zA-Z0-9]|MHz" "$out/stamps.log" | head -26
