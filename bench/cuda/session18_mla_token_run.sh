#!/usr/bin/env bash
# Device call (session 18): one decode token's attention core in one clustered launch
# (attention/mla_token.h). Its GPU tests and the model's, its phase timeline alone
# (mla_token_bench), then V2-Lite batch 1-2 with it on and off, interleaved.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/mla_token_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session18_mla_token_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
export GTEST_FILTER='MlaToken*:CudaDecodeGemvModel*:CudaOps.MlaRopePrep*'
step gpu_tests 200 backend_cuda_tests
unset GTEST_FILTER
grep -E "FAILED|Failure|PASSED|mla-token|rel|Expected|Which is|actual|RUN|cluster" "$out/gpu_tests.log" | head -40
for ctx in 1024 2048; do
  step bench_$ctx 60 mla_token_bench --context $ctx
  cat "$out/bench_$ctx.log"
done
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "on=model_step_bench $v2 --mla-token on" "off=model_step_bench $v2 --mla-token off"
