#!/usr/bin/env bash
# Closing device call (session 14): the whole GPU suite with the swapped-operand FP8 grouped GEMM
# as the decode default and the decode table of both models at batch 1-256. (The served run,
# bench/cuda/served_bench.sh, needs wideserve's libraries, which with the repository's fixtures
# exceed the 64 MiB a call carries.)
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session14_final_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
decode_tables
