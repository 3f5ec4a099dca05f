#!/usr/bin/env bash
# Closing device call (session 20): the GEMM, MoE and model GPU tests, the decode table of both
# models at batch 1-256, and V2-Lite batch 1-2 with the shared experts on the branch (default)
# and as units (--shared-branch off), interleaved. The whole suite passed on the same kernels
# with units at one token (session20_check_run.sh, 196 of 196).
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 300 backend_cuda_tests --gtest_filter='GemmBf16.*:*CudaMoeSmall*:CudaDecodeGemvModel.*:CudaModel*'
decode_tables
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 2 "branch=model_step_bench $v2" "units=model_step_bench $v2 --shared-branch off"
