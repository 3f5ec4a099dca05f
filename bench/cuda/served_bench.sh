#!/usr/bin/env bash
# Served output tokens/s through HTTP on one GPU: a wideserve worker (--device cuda, random weights
# of DeepSeek-V2-Lite dimensions) behind the frontend, driven by `wideserve bench` at the given
# concurrencies; then HF transformers generate on the same GPU and dimensions (the naive baseline).
# Usage: served_bench.sh WIDESERVE_BINARY [CONCURRENCIES] [INPUT_LEN] [OUTPUT_LEN]
# MODEL_ARGS picks the dimensions (make-model flags; default --preset v2-lite), e.g.
# MODEL_ARGS="--preset v3 --layers 4 --fp8" for DeepSeek-V3 cut to 4 layers with FP8 weights;
# WORKER_ARGS adds worker flags; with $OUT set the worker's log is copied there (LOG_TAG names it);
# HF_BATCHES overrides the HF baseline's batches ("none" skips it).
set -euo pipefail
WS=$1
CONC=${2:-64,256}
IN=${3:-512}
OUTLEN=${4:-128}
DIR=$(mktemp -d)
# shellcheck disable=SC2086
"$WS" make-model ${MODEL_ARGS:---preset v2-lite} --config-only --out "$DIR/model" > /dev/null
PORT=18080
"$WS" frontend --http-port $PORT > "$DIR/frontend.log" 2>&1 &
FE=$!
"$WS" worker --model-path "$DIR/model" --served-model-name m --device cuda --load-format dummy \
  --page-size 64 --max-running-requests 256 --chunked-prefill-size 8192 \
  --mem-fraction-static 0.8 ${WORKER_ARGS:-} > "$DIR/worker.log" 2>&1 &
WK=$!
# The worker's log (step statistics, errors) next to the device run's other outputs, also when a
# step below fails.
save_log() { if [ -n "${OUT:-}" ]; then cp "$DIR/worker.log" "$OUT/worker_${LOG_TAG:-served}.log"; fi; }
trap 'kill $FE $WK 2>/dev/null || true; wait 2>/dev/null || true; save_log' EXIT
for i in $(seq 1 240); do
  if curl -sf "http://127.0.0.1:$PORT/v1/models" | grep -q '"m"'; then break; fi
  if ! kill -0 $WK 2>/dev/null; then tail -20 "$DIR/worker.log"; exit 1; fi
  sleep 1
done
grep -E "GPU model|KV pool" "$DIR/worker.log" || true
for C in ${CONC//,/ }; do
  echo "== wideserve served, concurrency $C, $IN in / $OUTLEN out, greedy"
  "$WS" bench --url "http://127.0.0.1:$PORT" --model m --endpoint completions --dataset random \
    --random-ids --input-len "$IN" --output-len "$OUTLEN" --random-range-ratio 1 \
    --concurrency "$C" --num-requests $((C * 3)) --warmup-requests "$C" \
    --extra-body '{"temperature":0}' 2>&1 | grep -v "^\[" | tail -25
done
kill $WK $FE; wait 2>/dev/null || true
save_log
trap - EXIT
if [ "${HF_BATCHES:-}" = none ]; then exit 0; fi
echo "== HF transformers generate (same GPU, same dimensions, random bf16)"
python3 "$(dirname "$0")/hf_generate_bench.py" "$DIR/model" --batches "${HF_BATCHES:-$CONC}" --input-len "$IN" \
  --output-len 32
