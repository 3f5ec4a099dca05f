#!/usr/bin/env bash
# Device call (session 17): what the GPU KV handoff of PD disaggregation costs at V2-Lite
# dimensions: bench/cuda/pd_cuda_ttft.py (aggregated vs 1P1D tcp, 512- and 2048-token prompts).
# Pack first (here), with tests/fixtures moved out of the tree for the call:
#   scripts/device_pack.sh build-cuda wideserve
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
ws=$(command -v wideserve)
step pd_ttft 290 env WS_BINARY="$ws" WS_SOURCE_DIR="$PWD" python3 bench/cuda/pd_cuda_ttft.py
grep -E "latency|^\||FAIL|Traceback|Error|error" "$out/pd_ttft.log" | head -30
