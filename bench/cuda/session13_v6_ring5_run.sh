#!/usr/bin/env bash
# Device call (session 13): MLA decode v6 with a fifth KV stage (a pair starting at the last stage
# wraps around and takes its Q K^T as two 32-row halves) against the four-stage v6
# (old_mla_bench), each side by side with v5, after the MLA GPU tests; then the V3 4-layer FP8
# decode step with --mla-decode v5 / v6.
# Pack first (here, the four-stage build copied to build-cuda/bench/old_mla_bench):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/mla_bench \
#     bench/old_mla_bench bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session13_v6_ring5_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step mla_tests 200 backend_cuda_tests --gtest_filter='*Mla*:CudaGraph*'
grep -E "Failure|Expected|Which is|rel|heads" "$out/mla_tests.log" | head -30
for rep in 1 2; do
  for b in mla_bench old_mla_bench; do
    step ${b}_$rep 200 $b --kernel v5v6 --heads 128
    grep -E "decode" "$out/${b}_$rep.log"
  done
done
for rep in 1 2; do
  for k in v5 v6; do
    name="v3_${k}_$rep"
    step "$name" 100 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
      --batches 128,256 --cuda-graph-max-bs 256 --mla-decode "$k"
    echo "V3 mla $k:"
    grep -E "^\| [0-9]" "$out/$name.log" | head -2
  done
done
