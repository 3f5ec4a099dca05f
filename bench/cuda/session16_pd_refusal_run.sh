#!/usr/bin/env bash
# Device call (session 16): a worker asked for prefill/decode disaggregation on a GPU machine
# fails at start with the reason (the KV transfer agents move host memory only): once with
# --device left to resolve to cuda (the seed's command line), once with --device cuda.
# Pack first (here): scripts/device_pack.sh build-cuda wideserve, with tests/fixtures moved out of
# the tree for the call (see session15_served_run.sh)
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session16_pd_refusal_run.sh",
#           carry=[".devpack"], timeout_s=200)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
ws=$(command -v wideserve)
d=$(mktemp -d)
"$ws" make-model --preset v2-lite --config-only --out "$d/model" > /dev/null
step pd_auto 60 "$ws" worker --model-path "$d/model" --load-format dummy \
  --disaggregation-mode prefill --disaggregation-transfer-backend nixl
tail -2 "$out/pd_auto.log"
step pd_cuda 60 "$ws" worker --model-path "$d/model" --load-format dummy --device cuda \
  --disaggregation-mode decode
tail -2 "$out/pd_cuda.log"
