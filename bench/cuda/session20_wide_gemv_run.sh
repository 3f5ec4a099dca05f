#!/usr/bin/env bash
# Device call (session 20): the GEMV with a partial last k block (V2-Lite's dense down, k = 10944)
# and the LM head and dense gate_up on the GEMV at <= 2 tokens (--wide-gemv): GEMM and model
# tests, then decode at batch 1-2, main at 2c400fe (prev) against this build with the wide GEMVs
# on and off, interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench \
#   bench/prev_model_step_bench tests/backend_cuda_tests
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 300 backend_cuda_tests --gtest_filter='GemmBf16.*:CudaDecodeGemvModel.*:CudaModel*'
grep -E "wide-gemv|FAILED|Failure" "$out/tests.log" | head
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "on=model_step_bench $v2" \
  "off=model_step_bench $v2 --wide-gemv off"
v3="--preset v3 --layers 4 --fp8 --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "v3prev=prev_model_step_bench $v3" "v3on=model_step_bench $v3" \
  "v3off=model_step_bench $v3 --wide-gemv off"
