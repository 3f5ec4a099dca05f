#!/usr/bin/env bash
# One device call after the graph-workspace fix: the GPU suite, compute-sanitizer's memcheck over
# the graph-workspace tests (graph steps at split-heavy buckets), then served V2-Lite and V3 at
# 256 concurrent requests with the default graph range (batches <= 160 in graphs, the rest eager),
# the configuration that hit an illegal address before the fix. Pack first (here):
#   scripts/device_pack.sh build-cuda wideserve tests/backend_cuda_tests
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/graph_ws_check_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 150 backend_cuda_tests
grep -E "^\[  (PASSED|FAILED) |FAILED TEST|graph-ws" "$out/gpu_tests.log"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
step memcheck 150 "$SAN" --tool memcheck backend_cuda_tests --gtest_filter='CudaGraphWorkspace.*'
grep -E "ERROR SUMMARY|PASSED|FAILED|Invalid" "$out/memcheck.log" | head -20
ws=$(command -v wideserve)
export HF_BATCHES=none
for run in 1 2; do
  step "served_v2lite_$run" 120 env MODEL_ARGS="--preset v2-lite" LOG_TAG="v2lite_$run" \
    bash bench/cuda/served_bench.sh "$ws" 256
done
step served_v3 120 env MODEL_ARGS="--preset v3 --layers 4 --fp8" LOG_TAG=v3 \
  bash bench/cuda/served_bench.sh "$ws" 256
grep -E "^==|Output token throughput|first error|^P50|^P90" "$out"/served_*.log
