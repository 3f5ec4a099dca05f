#!/usr/bin/env bash
# Served decode at concurrency 1 and 4 through HTTP (2026-11-28, session 6): the batch-1/2 paths
# (FP8 and BF16 GEMVs, fused small-batch MoE) inside the real worker, with HF transformers
# generate at batch 1 and 4 on the same GPU and dimensions as the baseline.
# Pack first (here): scripts/device_pack.sh build-cuda wideserve
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/served_small_batch_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
ws=$(command -v wideserve)
export MODEL_ARGS="--preset v3 --layers 4 --fp8"
step served_v3 200 env LOG_TAG=v3 bash bench/cuda/served_bench.sh "$ws" 1,4
export MODEL_ARGS="--preset v2-lite"
step served_v2lite 200 env LOG_TAG=v2lite bash bench/cuda/served_bench.sh "$ws" 1,4
grep -E "^==|Output token throughput|^P50|^\| |rc=|Time per Output|Inter" "$out"/served_v3.log \
  "$out"/served_v2lite.log | head -80
