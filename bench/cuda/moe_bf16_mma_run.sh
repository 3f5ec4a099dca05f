#!/usr/bin/env bash
# Session 7 device call: the fused MoE's BF16 down launch on tensor cores. MoE GPU tests and the
# model fixture tests, moe_bench --small against its bytes floor, and V2-Lite decode at batch 1-4.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/moe_bench \
#   bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/moe_bf16_mma_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 150 backend_cuda_tests --gtest_filter='*CudaMoeSmall*:*CudaFixture*:*Moe*'
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
step moe_small 60 moe_bench --small
head -12 "$out/moe_small.log"
step step_v2lite 90 model_step_bench --preset v2-lite --reps 10 --prefills 1 --batches 1,2,4
grep -E "^\| [0-9]|bandwidth" "$out/step_v2lite.log"
