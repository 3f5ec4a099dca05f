#!/usr/bin/env bash
# Third device call of 2026-11-28 (session 6): the GPU test suite with the tensor-core FP8 path of
# the fused MoE, the fused MoE against its floor, the small-M/GEMV sweep with the retuned GEMV
# split, and the full decode table (batch 1-256) with every new piece on, next to the same binary
# with the fused MoE and the GEMV off (the kernels of the session before).
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/gemm_bench bench/moe_bench \
#     bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/small_batch_run3.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 200 backend_cuda_tests
grep -E "^\[moe small|FAILED|Failure" "$out/gpu_tests.log" | head -40
step moe_small 90 moe_bench --small
step gemm_sweep 120 gemm_bench --sweep-splits
cat "$out/moe_small.log" "$out/gemm_sweep.log"
v3="--preset v3 --layers 4 --fp8 --reps 8 --prefills 2048,8192 --batches 1,2,4,32,128,256"
v2="--preset v2-lite --reps 8 --prefills 2048,8192 --batches 1,2,4,32,128,256"
step step_v3 90 model_step_bench $v3
step step_v3_old 90 model_step_bench $v3 --moe-small off --fp8-gemv off
step step_v2lite 90 model_step_bench $v2
step step_v2lite_old 90 model_step_bench $v2 --moe-small off
for f in step_v3 step_v3_old step_v2lite step_v2lite_old; do
  echo "--- $f"
  grep -E "^\| [0-9]|kernels:|bandwidth" "$out/$f.log"
done
