#!/usr/bin/env bash
# Fourth device call of 2026-11-28 (session 6): the GPU test suite with the BF16 GEMV, cuBLASLt vs
# the GEMVs at the V3 FP8 and V2-Lite BF16 decode shapes (gemm_bench --sweep-splits), and decode
# steps with the BF16 GEMV on and off side by side (V2-Lite; V3's router is its only BF16 GEMM).
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/gemm_bench \
#     bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/small_batch_run4.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 200 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -30
step gemm_sweep 150 gemm_bench --sweep-splits
cat "$out/gemm_sweep.log"
v2="--preset v2-lite --reps 8 --prefills 2048 --batches 1,2,4,32,128,256"
v3="--preset v3 --layers 4 --fp8 --reps 8 --prefills 2048 --batches 1,2,4,32,128,256"
step step_v2lite 90 model_step_bench $v2
step step_v2lite_nobgemv 90 model_step_bench $v2 --bf16-gemv off
step step_v3 90 model_step_bench $v3
for f in step_v2lite step_v2lite_nobgemv step_v3; do
  echo "--- $f"
  grep -E "^\| [0-9]|kernels:|bandwidth" "$out/$f.log"
done
