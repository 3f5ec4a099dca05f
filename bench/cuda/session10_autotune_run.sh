#!/usr/bin/env bash
# Session 10 device call: cuBLASLt algorithm autotuning (BlasContext::set_gemm_autotune) and the
# stacked q_a + kv_a GEMM (fuse_qkv_a). GPU tests of both first (GEMMs, weights, ops, model
# fixtures), then the decode steps of both models with the heuristic's first algorithm
# (--gemm-autotune 0) and with 16 candidates timed per plan, side by side, plus V3 with the
# stacked projection off, and the per-plan records (heuristic's choice vs the fastest, cold L2). NCU_STEP=1 adds ncu
# per-kernel times of an eager V3 batch-256 step. Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session10_autotune_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke 60 backend_cuda_tests --gtest_filter='*AutotunedPlansStayCorrect*:CudaWeights.*'
grep -q "rc=0" "$out/smoke.log" || exit 1
step gpu_tests 200 backend_cuda_tests --gtest_filter='Gemm*:QuantizeFp8.*:CudaOps.*:Fixtures/*:CudaGraphWorkspace.*:CudaWeights.*'
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
for t in 0 16; do
  step v3_step_t$t 120 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 2048 \
    --batches 1,32,128,256 --gemm-autotune $t
  grep -E "^\| |bandwidth" "$out/v3_step_t$t.log"
done
step v3_step_unfused 120 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 2048 \
  --batches 1,32,128,256 --gemm-autotune 0 --fuse-qkv-a off
grep -E "^\| [0-9]|bandwidth" "$out/v3_step_unfused.log"
for t in 0 16; do
  step v2lite_step_t$t 120 model_step_bench --preset v2-lite --reps 20 --prefills 2048 \
    --batches 32,128,256 --gemm-autotune $t
  grep -E "^\| |bandwidth" "$out/v2lite_step_t$t.log"
done
if [ -n "${NCU_STEP:-}" ] && [ -n "$NCU" ]; then
  step ncu_v3_b256 150 "$NCU" --clock-control none --metrics gpu__time_duration.sum \
    --print-summary per-kernel model_step_bench --reps 1 --prefills 1 --cuda-graph-max-bs 0 \
    --preset v3 --layers 4 --fp8 --batches 256 --gemm-autotune 0
fi
