#!/usr/bin/env bash
# Device call (session 20): main at its last commit (the dense gate_up change of
# session20_closing_run.sh taken out again: equal there): model, MoE and routing GPU tests and
# V2-Lite decode at batch 1-2, two rounds.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 200 backend_cuda_tests \
  --gtest_filter='*CudaMoeRouting*:*CudaMoeSmall*:CudaDecodeGemvModel.*:CudaModel*'
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "main=model_step_bench $v2"
