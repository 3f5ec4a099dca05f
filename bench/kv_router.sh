#!/usr/bin/env bash
# KV-aware routing (--router-mode kv) versus round-robin in one run: a frontend and 4 tiny-model
# CPU workers per mode, `wideserve bench --dataset prefix` (many users, few system prompts), the
# same prompts and arrival order for both. Reports the prefix-cache hit rate (cached prompt tokens /
# prompt tokens, from the frontend's wideserve_frontend_cached_tokens_total, i.e. the workers'
# usage.prompt_tokens_details.cached_tokens), TTFT p50/p99, and the largest share of requests one
# worker received (wideserve_frontend_worker_routed_requests).
# Usage: bench/kv_router.sh [MODEL_DIR] [NGROUPS] [USERS] [PREFIX_LEN] [QUESTION_LEN] [CONCURRENCY]
# Env: WS_BINARY (build/wideserve), WORKERS (4), OUT_LEN (8), KV_TOKENS (per-worker KV pool, 6144),
#      MODES ("round-robin kv kv@4": kv@S is --router-mode kv --router-prefill-load-scale S).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${WS_BINARY:-build/wideserve}
MODEL=${1:-}
NGROUPS=${2:-8}
USERS=${3:-16}
PREFIX_LEN=${4:-512}
QLEN=${5:-64}
CONC=${6:-8}
WORKERS=${WORKERS:-4}
OUT_LEN=${OUT_LEN:-8}
KV_TOKENS=${KV_TOKENS:-6144}
MODES=${MODES:-round-robin kv kv@4}
N=$((NGROUPS * USERS))
WORK=$(mktemp -d)
if [ -z "$MODEL" ]; then
  MODEL=$WORK/tiny
  "$BIN" make-model --preset tiny --out "$MODEL" --seed 0 >/dev/null 2>&1
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

run() {  # $1 = mode label: round-robin, random, kv or kv@SCALE
  local mode=$1
  local flags=(--router-mode "${mode%%@*}")
  [[ $mode == *@* ]] && flags+=(--router-prefill-load-scale "${mode#*@}")
  local http disc
  http=$(free_port); disc=$(free_port)
  "$BIN" frontend --http-host 127.0.0.1 --http-port "$http" --discovery "embedded://127.0.0.1:$disc" \
    "${flags[@]}" >"$WORK/frontend-$mode.log" 2>&1 &
  local fe=$!
  PIDS+=("$fe")
  local ws=()
  for i in $(seq 1 "$WORKERS"); do
    "$BIN" worker --model-path "$MODEL" --served-model-name m --discovery "embedded://127.0.0.1:$disc" \
      --host 127.0.0.1 --page-size 16 --max-total-tokens "$KV_TOKENS" --heartbeat-interval-ms 250 \
      >"$WORK/worker-$mode-$i.log" 2>&1 &
    ws+=($!)
    PIDS+=($!)
  done
  for _ in $(seq 1 240); do
    n=$(curl -s "http://127.0.0.1:$http/health" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("instances",[])))' 2>/dev/null || echo 0)
    [ "$n" = "$WORKERS" ] && break
    sleep 0.5
  done
  "$BIN" bench --url "http://127.0.0.1:$http" --model m --endpoint completions --dataset prefix --random-ids \
    --prefix-groups "$NGROUPS" --prefix-users "$USERS" --prefix-len "$PREFIX_LEN" --input-len "$QLEN" \
    --output-len "$OUT_LEN" --concurrency "$CONC" --num-requests "$N" --warmup-requests 0 --seed 1 \
    --output-json "$WORK/bench-$mode.json" >"$WORK/bench-$mode.log" 2>&1
  curl -s "http://127.0.0.1:$http/metrics" >"$WORK/metrics-$mode.txt"
  kill -TERM "$fe" "${ws[@]}" 2>/dev/null || true
  wait "$fe" "${ws[@]}" 2>/dev/null || true
  python3 - "$mode" "$WORK" <<'PY'
import json, sys
mode, work = sys.argv[1], sys.argv[2]
r = json.load(open(f"{work}/bench-{mode}.json"))
res = r.get("results", r)
vals = {}
routed = []
for line in open(f"{work}/metrics-{mode}.txt"):
    if line.startswith("#") or not line.strip():
        continue
    name, _, v = line.rpartition(" ")
    base = name.split("{")[0]
    if base == "wideserve_frontend_worker_routed_requests":
        routed.append(float(v))
    else:
        vals[base] = vals.get(base, 0.0) + float(v)
hit = vals.get("wideserve_frontend_cached_tokens_total", 0) / max(1.0, vals.get("wideserve_frontend_input_tokens_total", 0))
share = max(routed) / sum(routed) if routed and sum(routed) else float("nan")
print(f"{mode:12s} ok {res['completed']:4d}/{res['completed'] + res['failed']}  prefix hit {100 * hit:5.1f} %  "
      f"ttft p50 {res['ttft_ms']['p50']:7.1f} ms  p99 {res['ttft_ms']['p99']:7.1f} ms  "
      f"e2e p50 {res['e2e_latency_ms']['p50']:7.1f} ms  max worker share {100 * share:5.1f} % "
      f"(routed {sorted(int(x) for x in routed)})  req/s {res['request_throughput']:.2f}")
PY
}
echo "model $MODEL: $WORKERS workers (KV pool $KV_TOKENS tokens each, page 16), $NGROUPS system prompts x $USERS users" \
     "($PREFIX_LEN + $QLEN prompt tokens, $OUT_LEN output), concurrency $CONC, $N requests"
for m in $MODES; do run "$m"; done
