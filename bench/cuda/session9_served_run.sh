#!/usr/bin/env bash
# Session 9 device call: served output tokens/s through HTTP at 64 and 256 concurrent requests
# (512 random-id tokens in, 128 out, greedy), V3 4 layers FP8 and V2-Lite BF16, each with HF
# transformers generate on the same GPU and dimensions as the baseline (bench/cuda/served_bench.sh;
# HF at batch 256 on V3 runs out of memory, session 5, so V3 gets HF at 64 only).
# Pack first (here): scripts/device_pack.sh build-cuda wideserve (then mv .devpack .devpack2)
# then: run(command="DEVPACK=.devpack2 bash bench/cuda/device_run.sh bash
#           bench/cuda/session9_served_run.sh", carry=[".devpack2"], timeout_s=450)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
ws=$(command -v wideserve)
export MODEL_ARGS="--preset v3 --layers 4 --fp8"
step served_v3 210 env LOG_TAG=v3 HF_BATCHES=64 bash bench/cuda/served_bench.sh "$ws" 64,256
export MODEL_ARGS="--preset v2-lite"
step served_v2lite 210 env LOG_TAG=v2lite bash bench/cuda/served_bench.sh "$ws" 64,256
grep -E "^==|Output token throughput|^P50|^\| |rc=|Time per Output|Time to First" \
  "$out"/served_v3.log "$out"/served_v2lite.log | head -80
