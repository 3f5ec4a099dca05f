#!/usr/bin/env bash
# Closing device call (session 15): the whole GPU suite with the rank routing, MLA combine and
# rope prep changes, the decode table of both models at batch 1-256, and the kernel trace of a
# V2-Lite batch-1 step (trace_model_step_bench: a -DWS_KERNEL_TRACE=ON build).
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/trace_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session15_final_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
decode_tables
step trace 100 trace_model_step_bench --preset v2-lite --reps 20 --prefills 1 --batches 1 \
  --cuda-graph-max-bs 256 --trace "$out/v2lite"
grep -E "^\| [0-9]|trace:" "$out/trace.log" | head -20
