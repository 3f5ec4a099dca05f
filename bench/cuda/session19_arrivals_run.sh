#!/usr/bin/env bash
# Session 19: when mla_token's loads arrive (thread 0's stamps that wait for a loaded value:
# norm weight, inv_freq and page id, issued before the wait; q after it), in the V2-Lite batch-1
# step and alone.
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench bench/mla_token_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_arrivals_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1"
step stamps 100 model_step_bench $v2 --mla-token-stamps
grep -E "^\| [a-zA-Z0-9]|MHz" "$out/stamps.log" | head -26
step alone 60 mla_token_bench
grep -E "us per launch|^\| [a-zA-Z0-9]" "$out/alone.log" | head -26
