#!/usr/bin/env bash
# Session 15 device call: served output tokens/s through HTTP at 64 and 256 concurrent requests
# (512 random-id tokens in, 128 out, greedy), V2-Lite BF16, with HF transformers generate at 64 on
# the same GPU and dimensions (bench/cuda/served_bench.sh). The working tree's fixtures (34 MB)
# were moved out for the call, so that wideserve's libraries fit in the 64 MiB it carries.
# Pack first (here): scripts/device_pack.sh build-cuda wideserve
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session15_served_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
ws=$(command -v wideserve)
export MODEL_ARGS="--preset v2-lite"
step served_v2lite 280 env LOG_TAG=v2lite HF_BATCHES=64 bash bench/cuda/served_bench.sh "$ws" \
  64,256
grep -E "^==|Output token throughput|^P50|^\| |rc=|Time per Output|Time to First|tok/s" \
  "$out"/served_v2lite.log | head -60
