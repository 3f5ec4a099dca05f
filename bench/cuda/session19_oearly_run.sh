#!/usr/bin/env bash
# Session 19: o_proj's GEMV after the one-token launch reading h's old rows before its wait
# (--o-early on, the default) against after its dot products (off), V2-Lite batch 1,
# interleaved; the GEMV, MlaToken and model GPU tests first.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_oearly_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 200 backend_cuda_tests --gtest_filter='GemmBf16.*:MlaToken*:CudaDecodeGemvModel*'
grep -E "FAILED|Failure|Expected|Which is|mla-token" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1"
decode_ab 3 "off=model_step_bench $v2 --o-early off" "on=model_step_bench $v2 --o-early on"
