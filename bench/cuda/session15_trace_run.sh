#!/usr/bin/env bash
# Device call (session 15): per-CTA kernel timeline (kernel_trace.h) of the V2-Lite batch-1 decode
# step in its CUDA graph, from a build configured with -DWS_KERNEL_TRACE=ON and copied to
# build-cuda/bench/trace_model_step_bench, and A/B decode steps of the production binary with
# the shared experts as units of the fused MoE (--shared-branch off) and MLA decode v3.
# Pack first (here):
#   scripts/device_pack.sh build-cuda bench/model_step_bench bench/trace_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session15_trace_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256"
step trace 100 trace_model_step_bench $v2 --batches 1 --trace "$out/v2lite"
grep -E "^\||trace" "$out/trace.log" | head -30
for r in 1 2; do
  step new_$r 100 model_step_bench $v2 --batches 1,2
  step unit_shared_$r 100 model_step_bench $v2 --batches 1,2 --shared-branch off
  step mla_v3_$r 100 model_step_bench $v2 --batches 1,2 --mla-decode v3
  for f in new_$r unit_shared_$r mla_v3_$r; do
    echo "$f: $(grep -E "^\| [12] \| 1024" "$out/$f.log" | tr '\n' ' ')"
  done
done
