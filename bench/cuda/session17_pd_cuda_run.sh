#!/usr/bin/env bash
# Device call (session 17): prefill/decode disaggregation on the CUDA backend, the KV pools staged
# through host memory by the tcp agent (disagg/kv_agent.h): tests/e2e/disagg/gpu_pd_cuda.py
# (tiny model, aggregated GPU reference vs 1P1D tcp, 1P1D nixl, 1P2D tcp).
# Pack first (here), with tests/fixtures moved out of the tree for the call (see
# session15_served_run.sh): scripts/device_pack.sh build-cuda wideserve
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
ws=$(command -v wideserve)
command -v curl python3 || echo "missing curl or python3"
step pd_cuda 280 env WS_BINARY="$ws" WS_SOURCE_DIR="$PWD" python3 tests/e2e/disagg/gpu_pd_cuda.py
grep -E "^ok|^FAIL|reference:|up in|Traceback|Error" "$out/pd_cuda.log" | head -40
