#!/usr/bin/env bash
# Closing device call (session 16): the whole GPU suite with the router GEMV and routing in one
# clustered launch, the decode table of both models at batch 1-256, old (main before it) vs new
# at batch 1-2 interleaved, and the kernel trace of a V2-Lite batch-1 step
# (trace_model_step_bench: a -DWS_KERNEL_TRACE=ON build).
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/trace_model_step_bench bench/old_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session16_final_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
decode_tables
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
for r in 1 2; do
  step old_$r 100 old_model_step_bench $v2
  step new_$r 100 model_step_bench $v2
  for f in old_$r new_$r; do echo "$f: $(grep -E "^\| [12] \| 1024" "$out/$f.log" | tr '\n' ' ')"; done
done
step trace 100 trace_model_step_bench --preset v2-lite --reps 20 --prefills 1 --batches 1 \
  --cuda-graph-max-bs 256 --trace "$out/v2lite"
grep -E "^\| [0-9]|trace:" "$out/trace.log" | head -20
