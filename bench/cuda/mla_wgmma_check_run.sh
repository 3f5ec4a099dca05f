#!/usr/bin/env bash
# Session 8 device call: after the v5 size heuristic (mla_decode_wgmma_preferred), the MLA tests
# and the V3 decode step at batch 1-256 with the default kernels.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/mla_wgmma_check_run.sh",
#           carry=[".devpack"], timeout_s=240)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke_v5 60 backend_cuda_tests --gtest_filter='*MlaDecode.ManyHeads/v5*'
grep -q "rc=0" "$out/smoke_v5.log" || exit 1
step mla_tests 120 backend_cuda_tests --gtest_filter='*Mla*:*CudaFixture*'
grep -E "FAILED|Failure" "$out/mla_tests.log" | head -20
step v3_default 90 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
  --batches 1,2,4,32,128,256
grep -E "^\| [0-9]|bandwidth|kernels" "$out/v3_default.log"
