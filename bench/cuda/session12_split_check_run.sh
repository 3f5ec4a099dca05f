#!/usr/bin/env bash
# Device call (session 12): after moe_small.cu was split (the BF16 tensor-core down launch into
# moe_small_down_bf16.cu, shared helpers into moe_small_common.cuh; a move, same code): the MoE and
# fixture GPU tests, the fused small MoE and a V2-Lite decode step, as a check that nothing moved.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench bench/moe_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session12_split_check_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 200 backend_cuda_tests --gtest_filter='CudaMoe*:Moe*:Fixtures/*:CudaDecodeGemvModel*'
step small 60 moe_bench --small
grep -E "V2-Lite|V3" "$out/small.log" | head -8
step v2lite 100 model_step_bench --preset v2-lite --reps 30 --prefills 1 --batches 1,2 \
  --cuda-graph-max-bs 2
grep -E "^\| [0-9]" "$out/v2lite.log"
