#!/usr/bin/env bash
# One device call for everything written without a GPU (session 4): the whole GPU test suite, then
# the side-by-side benches of each new kernel against the one in use, each against the limit
# measured in the same run. Logs go to $OUT. Pack first (here):
#   scripts/device_pack.sh build-cuda wideserve tests/backend_cuda_tests bench/mla_bench \
#     bench/gemm_bench bench/moe_bench bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/first_gpu_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 240 backend_cuda_tests
step mla_bench 60 mla_bench --kernel both
step gemm_small_m 60 gemm_bench --small-m
step moe_paths 60 moe_bench --paths
tail -30 "$out"/mla_bench.log "$out"/gemm_small_m.log "$out"/moe_paths.log
# Whole decode steps with the kernels in use against the new ones (V3 dimensions, 4 layers, FP8).
v3="model_step_bench --preset v3 --layers 4 --fp8 --reps 6 --prefills 2048"
step step_v3_default 70 $v3
step step_v3_new 70 $v3 --mla-decode v4 --moe-path auto --fp8-small-m-max 16
tail -12 "$out"/step_v3_default.log "$out"/step_v3_new.log
