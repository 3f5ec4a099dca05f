#!/usr/bin/env bash
# Time to first token of disaggregated (1 prefill + 1 decode worker) versus aggregated (1 worker)
# serving of the same model at the same fixed request rate, measured by `wideserve bench` in one
# run. Usage: bench/pd_ttft.sh [MODEL_DIR] [RATE] [REQUESTS] [INPUT_LEN] [OUTPUT_LEN]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${WS_BINARY:-build/wideserve}
MODEL=${1:-}
RATE=${2:-4}
N=${3:-80}
IN=${4:-512}
OUT=${5:-32}
if [ -z "$MODEL" ]; then
  MODEL=$(mktemp -d)/tiny
  "$BIN" make-model --preset tiny --out "$MODEL" --seed 0 >/dev/null 2>&1
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() {  # $1 = label, rest = serve flags
  local label=$1; shift
  local port; port=$(free_port)
  local log; log=$(mktemp)
  "$BIN" serve --http-port "$port" --model-path "$MODEL" --served-model-name m --disable-radix-cache "$@" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 240); do grep -q "wideserve ready" "$log" && break; sleep 0.5; done
  "$BIN" bench --url "http://127.0.0.1:$port" --model m --endpoint completions --random-ids \
    --input-len "$IN" --output-len "$OUT" --request-rate "$RATE" --num-requests "$N" \
    --warmup-requests 4 --seed 1 --output-json "/tmp/pd_ttft_$label.json" >/dev/null 2>&1
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$label" <<'PY'
import json, sys
label = sys.argv[1]
r = json.load(open(f"/tmp/pd_ttft_{label}.json"))
res = r.get("results", r)
def g(*keys):
    d = res
    for k in keys:
        d = d[k]
    return d
try:
    print(f"{label:12s} ok {g('completed')} ttft p50 {g('ttft_ms','p50'):.1f} ms p90 {g('ttft_ms','p90'):.1f} ms "
          f"itl p50 {g('itl_ms','p50'):.1f} ms  tpot p50 {g('tpot_ms','p50'):.1f} ms  e2e p50 {g('e2e_latency_ms','p50'):.1f} ms  out tok/s {g('output_token_throughput'):.1f}")
except Exception:
    print(label, json.dumps(res)[:2000])
PY
}
echo "model $MODEL, rate $RATE req/s, $N requests, input $IN, output $OUT tokens"
run aggregated
run disagg --disagg
