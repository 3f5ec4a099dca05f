#!/usr/bin/env bash
# One device call: every kernel of small-batch decode steps in launch order, with warm caches
# (ncu --cache-control none, clocks left alone, eager, one metric), next to the CUDA-graph step
# time of the same shapes, so the gap between a graph step and the sum of its kernels is seen.
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/launch_profile_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
prof() {
  local name=$1
  shift
  step "$name" 150 "$NCU" --clock-control none --cache-control none --csv \
    --metrics gpu__time_duration.sum model_step_bench --reps 1 --prefills 1 \
    --cuda-graph-max-bs 0 "$@"
}
prof ncu_v2lite4_b1 --preset v2-lite --layers 4 --batches 1
prof ncu_v3_b1 --preset v3 --layers 4 --fp8 --batches 1
step graph_v2lite4 120 model_step_bench --preset v2-lite --layers 4 --batches 1,2,4 --prefills 1 --reps 20
step graph_v2lite 120 model_step_bench --preset v2-lite --batches 1,2,4 --prefills 1 --reps 20
step graph_v3 120 model_step_bench --preset v3 --layers 4 --fp8 --batches 1,2,4 --prefills 1 --reps 20
tail -n 30 "$out"/graph_*.log
