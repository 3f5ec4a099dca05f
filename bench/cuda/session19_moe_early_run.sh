#!/usr/bin/env bash
# Session 19: the small MoE's down launches reading the residual rows and the branch's shared
# output before their wait (new) against the build before (prev), V2-Lite and V3 (4 layers,
# FP8) at batch 1 and 2, interleaved; the MoE, model and MlaToken GPU tests first. That first
# version failed two GPU tests (the shared output is not final when the launch starts in a
# graph); main reads only the residual early (session19_check_run.sh).
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests \
#   bench/model_step_bench bench/prev_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_moe_early_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 250 backend_cuda_tests \
  --gtest_filter='*MoeSmall*:*SharedExpertBranch*:*Fixture*:MlaToken*:CudaDecodeGemvModel*'
grep -E "FAILED|Failure|Expected|Which is|tests ran|PASSED" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
v3="--preset v3 --layers 4 --fp8 --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "new=model_step_bench $v2"
decode_ab 2 "prev3=prev_model_step_bench $v3" "new3=model_step_bench $v3"
