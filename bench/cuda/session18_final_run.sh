#!/usr/bin/env bash
# Closing device call (session 18): the whole GPU suite with the clustered one-token attention
# core (attention/mla_token.h) in the model, the decode table of both models at batch 1-256,
# the core on and off at V2-Lite batch 1-2 interleaved, its phase stamps in the step and alone.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/mla_token_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session18_final_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure|mla-token|tests ran|PASSED" "$out/gpu_tests.log" | head -20
decode_tables
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "on=model_step_bench $v2 --mla-token on" "off=model_step_bench $v2 --mla-token off"
step stamps 100 model_step_bench --preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 \
  --batches 1 --mla-token-stamps
grep -E "^\| [a-zA-Z]|MHz" "$out/stamps.log" | head -20
step alone 60 mla_token_bench
grep -E "us per launch" "$out/alone.log"
