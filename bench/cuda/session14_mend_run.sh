#!/usr/bin/env bash
# Device call (session 14): the mends after the closing call (one CUTLASS FP8 grouped-kernel
# template for both instantiations, one cp.async helper for the MLA, small-M GEMM and prefill
# kernels, one shared-memory opt-in helper for eight launchers, one down-item helper for the fused
# MoE's two down launches): the whole GPU suite, the kernel benches they touch, and the decode
# and prefill steps of the previous binary (old_model_step_bench, 04bc985) and the new one,
# interleaved.
# Pack first (here), with the previous model_step_bench copied to build-cuda/bench/old_model_step_bench:
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/old_model_step_bench bench/moe_bench bench/mla_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session14_mend_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
step small 120 moe_bench --small
grep -E "^V2-Lite|^V3|limit" "$out/small.log"
step decode 120 moe_bench --decode
grep -E "^\| (256|32) |read-only" "$out/decode.log"
step mla 120 mla_bench --kernel v5v6 --heads 128
grep -E "copy|decode" "$out/mla.log" | head -12
for round in 1 2; do
  for b in old_model_step_bench model_step_bench; do
    step ${b}_v3_$round 120 $b --preset v3 --layers 4 --fp8 --reps 20 --prefills 2048 \
      --batches 1,256 --cuda-graph-max-bs 256
    step ${b}_v2_$round 120 $b --preset v2-lite --reps 20 --prefills 2048 --batches 1 \
      --cuda-graph-max-bs 256
    echo "$b round $round:"
    grep -hE "^\| [0-9]" "$out/${b}_v3_$round.log" "$out/${b}_v2_$round.log"
  done
done
