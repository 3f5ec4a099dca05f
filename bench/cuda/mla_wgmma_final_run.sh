#!/usr/bin/env bash
# Session 8 device call: the wgmma MLA decode kernel (v5) as the model's default. Smoke test with
# a short limit (a barrier-protocol hang costs 60 s), mla_bench v4 | v5 at 128 heads, the V3 decode
# step with the default (v5) and with v4, then the whole GPU test suite.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/mla_bench \
#   bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/mla_wgmma_final_run.sh",
#           carry=[".devpack"], timeout_s=480)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke_v5 60 backend_cuda_tests --gtest_filter='*MlaDecode.ManyHeads/v5*'
grep -q "rc=0" "$out/smoke_v5.log" || exit 1
step mla_bench 90 mla_bench --kernel v4v5 --heads 128
grep -E "copy|decode" "$out/mla_bench.log"
for k in default v4; do
  step "v3_$k" 90 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
    --batches 1,32,128,256 --mla-decode "$k"
  grep -E "^\| [0-9]|bandwidth|kernels" "$out/v3_$k.log" | sed "s/^/$k /"
done
step gpu_tests 260 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
