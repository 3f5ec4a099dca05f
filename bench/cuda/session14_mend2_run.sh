#!/usr/bin/env bash
# Device call (session 14): the fused MoE's two down launches storing their item dots through one
# helper (store_item_dots): the fused-MoE, pipeline and fixture GPU tests and moe_bench --small.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/moe_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session14_mend2_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 200 backend_cuda_tests --gtest_filter='*CudaMoe*:*Fixture*:CudaDecodeGemvModel.*'
grep -E "FAILED|Failure" "$out/tests.log" | head -20
step small 120 moe_bench --small
grep -E "^V2-Lite|^V3|limit" "$out/small.log"
