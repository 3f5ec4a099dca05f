#!/usr/bin/env bash
# Device call (session 13): MLA decode v6 (query in registers, TMA tiles) against v5: the MLA
# GPU tests (v6 cases and the parameterised suite), mla_bench side by side at 128 heads, then the
# V3 4-layer FP8 decode step with --mla-decode v5 / v6 in interleaved rounds.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/mla_bench bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session13_mla_v6_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step mla_tests 200 backend_cuda_tests --gtest_filter='*Mla*'
grep -E "Failure|Expected|Which is|rel|heads" "$out/mla_tests.log" | head -30
step mla_bench 200 mla_bench --kernel v5v6 --heads 128
grep -E "copy|decode|mode" "$out/mla_bench.log"
for rep in 1 2; do
  for k in v5 v6; do
    name="v3_${k}_$rep"
    step "$name" 100 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
      --batches 32,128,256 --cuda-graph-max-bs 256 --mla-decode "$k"
    echo "V3 mla $k:"
    grep -E "^\| [0-9]" "$out/$name.log"
  done
done
