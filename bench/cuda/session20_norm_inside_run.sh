#!/usr/bin/env bash
# Device call (session 20): at one token the post-attention RMSNorm made by the router + routing
# launch and the fused up launch themselves (shared experts as units, no norm launch between
# o_proj and the router; new default) against the norm launch with the shared-expert branch
# (--moe-norm-inside off) and 2884d7e (prev): routing, MoE and model GPU tests, then V2-Lite
# decode at batch 1-2, interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda bench/model_step_bench \
#   bench/prev_model_step_bench tests/backend_cuda_tests
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 300 backend_cuda_tests \
  --gtest_filter='*CudaMoeRouting*:*CudaMoeSmall*:CudaDecodeGemvModel.*:CudaModel*:GemmBf16.*'
grep -E "norm-inside|FAILED|Failure" "$out/tests.log" | head -20
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "inside=model_step_bench $v2" \
  "launch=model_step_bench $v2 --moe-norm-inside off"
