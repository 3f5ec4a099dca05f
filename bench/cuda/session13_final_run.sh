#!/usr/bin/env bash
# Closing device call (session 13): the whole GPU suite with MLA decode v6 as the model's default,
# then the decode table of both models at batch 1-256 (V3 4-layer FP8 and V2-Lite BF16) and
# mla_bench v5 | v6 at 128 heads.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench bench/mla_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session13_final_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
decode_tables
step mla_bench 120 mla_bench --kernel v5v6 --heads 128
grep -E "copy|decode" "$out/mla_bench.log"
