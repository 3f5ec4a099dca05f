#!/usr/bin/env bash
# Frontend overhead: `wideserve frontend` + `wideserve worker --engine mock` against ai-dynamo's
# frontend + `python -m dynamo.mocker`, both timed by the same mock step (decode step DECODE_MS,
# prefill at PREFILL_TPS tokens/s) and driven by the same load generator (aiperf) with the same
# workload. Prints a comparison table; "added" latency = measured minus what the mock imposes.
#
# Usage: bench/frontend_overhead.sh [CONCURRENCY:REQUESTS ...]   (default: 1:100 1000:2000)
# Env: WS_BINARY (build-perf/wideserve), PEER_VENV (/work/venv-peer), DECODE_MS (10),
#      PREFILL_TPS (100000), ISL (128), OSL (64), ENDPOINT (chat), KEEP (1 = keep the work dir),
#      WSBENCH_MIN_CONC (100): at this concurrency and above, also drive both servers with
#      `wideserve bench` (C++, lighter than aiperf, which cannot keep 1000 streams in flight on 2 cores).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
ws="${WS_BINARY:-$here/build-perf/wideserve}"
venv="${PEER_VENV:-/work/venv-peer}"
py="$venv/bin/python"
aiperf="$venv/bin/aiperf"
decode_ms="${DECODE_MS:-10}"
prefill_tps="${PREFILL_TPS:-100000}"
isl="${ISL:-128}"
osl="${OSL:-64}"
endpoint="${ENDPOINT:-chat}"
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(1:100 1000:2000)

# Python must not start in /tmp itself (a stray module there can shadow the stdlib).
work="$(mktemp -d /tmp/frontend_overhead.XXXXXX)"
cd "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
finish() {
  cleanup
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap finish EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # URL of /v1/models, model name, seconds
  local i
  for i in $(seq 1 $(($3 * 4))); do
    if curl -sf "$1" 2>/dev/null | grep -q "\"$2\""; then return 0; fi
    sleep 0.25
  done
  echo "server at $1 did not list model $2 within $3 s" >&2
  return 1
}

"$ws" make-model --preset tiny --out "$work/model" --seed 0 >/dev/null 2>&1
model="$work/model"
name=tiny

# The dynamo mocker's timing model from a profile table: prefill time linear in new tokens at
# PREFILL_TPS (like --mock-prefill-tokens-per-s), decode step a constant DECODE_MS at any batch
# and context (like --mock-decode-ms). Both engines run one step = prefill of the newly admitted
# prompts + one decode token for every running sequence, and emit the first token at its end.
"$py" - "$prefill_tps" "$decode_ms" <<'EOF'
import sys, numpy as np
tps, dms = float(sys.argv[1]), float(sys.argv[2])
np.savez("perf.npz", prefill_isl=np.array([0.0, 1e7]), prefill_ttft_ms=np.array([0.0, 1e7 / tps * 1e3]),
         decode_active_kv_tokens=np.array([0.0, 1e9]), decode_context_length=np.array([1.0, 1e7]),
         decode_itl=np.full((2, 2), dms))
EOF

run_aiperf() {  # url tag concurrency requests
  local warm=$(($3 < 10 ? 5 : ($3 < 200 ? $3 : 200)))
  "$aiperf" profile --model "$name" --url "$1" --endpoint-type "$endpoint" --streaming \
    --tokenizer "$model" --synthetic-input-tokens-mean "$isl" --synthetic-input-tokens-stddev 0 \
    --output-tokens-mean "$osl" --output-tokens-stddev 0 --extra-inputs ignore_eos:true --use-server-token-count \
    --concurrency "$3" --request-count "$4" --warmup-request-count "$warm" \
    --request-timeout-seconds 300 --random-seed 1 --ui-type none --no-server-metrics \
    --artifact-dir "$work/aiperf_$2" >"$work/aiperf_$2.log" 2>&1 || {
    echo "aiperf failed for $2 (log: $work/aiperf_$2.log)" >&2
    tail -n 20 "$work/aiperf_$2.log" >&2
    return 1
  }
}

start_wideserve() {
  local http dport
  http=$(free_port)
  dport=$(free_port)
  "$ws" frontend --http-port "$http" --discovery "embedded://127.0.0.1:$dport" \
    --log-level warning >"$work/ws_frontend.log" 2>&1 &
  pids+=($!)
  "$ws" worker --engine mock --mock-decode-ms "$decode_ms" --mock-prefill-tokens-per-s "$prefill_tps" \
    --max-running-requests 1024 --model-path "$model" --served-model-name "$name" \
    --discovery "embedded://127.0.0.1:$dport" --log-level warning >"$work/ws_worker.log" 2>&1 &
  pids+=($!)
  url="http://127.0.0.1:$http"
  wait_ready "$url/v1/models" "$name" 60
}

start_dynamo() {
  local http
  http=$(free_port)
  export DYN_FILE_KV="$work/dyn_kv_$RANDOM"
  # No etcd/NATS: file-backed discovery, TCP request plane, ZMQ event plane.
  local common=(--discovery-backend file --request-plane tcp --event-plane zmq)
  # Log level warn on both sides (ours runs with --log-level warning): Dynamo logs every request
  # at info by default.
  export DYN_LOG=warn
  "$py" -m dynamo.frontend --http-port "$http" "${common[@]}" --router-mode round-robin \
    >"$work/dyn_frontend.log" 2>&1 &
  pids+=($!)
  # Same limits as ours: 1024 sequences, no per-step token budget below the whole batch's
  # prompts (ours admits every waiting prompt in one step), no prefix cache (ours has none).
  "$py" -m dynamo.mocker --model-path "$model" --model-name "$name" "${common[@]}" \
    --planner-profile-data "$work/perf.npz" --max-num-seqs 1024 \
    --max-num-batched-tokens 1048576 --no-enable-prefix-caching \
    >"$work/dyn_mocker.log" 2>&1 &
  pids+=($!)
  url="http://127.0.0.1:$http"
  wait_ready "$url/v1/models" "$name" 120
}

wsbench_min="${WSBENCH_MIN_CONC:-100}"
run_wsbench() {  # url tag concurrency requests
  local warm=$(($3 < 200 ? $3 : 200))
  "$ws" bench --url "$1" --model "$name" --endpoint "$endpoint" --dataset random \
    --input-len "$isl" --output-len "$osl" --random-range-ratio 1 --tokenizer "$model" \
    --concurrency "$3" --num-requests "$4" --warmup-requests "$warm" --seed 1 \
    --request-timeout-s 300 --output-json "$work/wsbench_$2.json" >"$work/wsbench_$2.txt" 2>&1 || {
    echo "wideserve bench failed for $2" >&2
    tail -n 20 "$work/wsbench_$2.txt" >&2
    return 1
  }
}

for sys in wideserve dynamo; do
  "start_$sys"
  for r in "${runs[@]}"; do
    c="${r%%:*}"
    n="${r##*:}"
    echo "== $sys concurrency $c requests $n" >&2
    run_aiperf "$url" "${sys}_c$c" "$c" "$n"
    if [ "$c" -ge "$wsbench_min" ]; then
      echo "== $sys concurrency $c requests $n (wideserve bench)" >&2
      run_wsbench "$url" "${sys}_c$c" "$c" "$n"
    fi
  done
  cleanup
  sleep 1
done

"$py" - "$work" "$decode_ms" "$prefill_tps" "$wsbench_min" "${runs[@]}" <<'EOF'
import json, sys, pathlib
work, dms, tps = pathlib.Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
wsmin = int(sys.argv[4])
runs = sys.argv[5:]

def aiperf(tag):
    f = next((work / f"aiperf_{tag}").rglob("profile_export_aiperf.json"))
    d = json.loads(f.read_text())
    g = lambda k, st: float((d.get(k) or {}).get(st) or float("nan"))
    return dict(rps=g("request_throughput", "avg"), tps=g("output_token_throughput", "avg"),
                isl=g("usage_prompt_tokens", "avg"), inflight=g("effective_concurrency", "avg"),
                t50=g("time_to_first_token", "p50"), t90=g("time_to_first_token", "p90"),
                t99=g("time_to_first_token", "p99"), i50=g("inter_token_latency", "p50"),
                i90=g("inter_token_latency", "p90"), i99=g("inter_token_latency", "p99"),
                err=int(g("error_request_count", "avg")) if d.get("error_request_count") else 0)

def wsbench(tag):
    p = work / f"wsbench_{tag}.json"
    if not p.exists():
        return None
    r = json.loads(p.read_text())["results"]
    # Mean requests in flight = sum of request latencies / duration (Little's law).
    inflight = r["e2e_latency_ms"]["mean"] * r["completed"] / 1e3 / r["duration_s"]
    return dict(rps=r["request_throughput"], tps=r["output_token_throughput"],
                isl=r["input_tokens"]["mean"], inflight=inflight,
                t50=r["ttft_ms"]["p50"], t90=r["ttft_ms"]["p90"], t99=r["ttft_ms"]["p99"],
                i50=r["tpot_ms"]["p50"], i90=r["tpot_ms"]["p90"], i99=r["tpot_ms"]["p99"],
                err=r["failed"])

print(f"mock step: decode {dms:g} ms, prefill {tps:g} tokens/s; imposed TTFT = decode step + "
      f"prompt_tokens / prefill rate, imposed ITL (per-request TPOT) = decode step")
hdr = ("system", "driver", "conc", "in flight", "req/s", "out tok/s", "TTFT p50", "TTFT p90",
       "TTFT p99", "ITL p50", "ITL p90", "ITL p99", "added TTFT p50", "added ITL p50", "errors")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
rows = {}
for r in runs:
    c = r.split(":")[0]
    for driver, fn in (("aiperf", aiperf), ("wideserve bench", wsbench)):
        for sysname in ("wideserve", "dynamo"):
            row = fn(f"{sysname}_c{c}")
            if row is None:
                continue
            row["at"] = row["t50"] - (dms + row["isl"] / tps * 1e3)
            row["ai"] = row["i50"] - dms
            rows[(sysname, driver, c)] = row
            print(f"| {sysname} | {driver} | {c} | {row['inflight']:.0f} | {row['rps']:.1f} | "
                  f"{row['tps']:.0f} | {row['t50']:.2f} | {row['t90']:.2f} | {row['t99']:.2f} | "
                  f"{row['i50']:.2f} | {row['i90']:.2f} | {row['i99']:.2f} | {row['at']:.2f} | "
                  f"{row['ai']:.2f} | {row['err']} |")
print()
for (sysname, driver, c), w in rows.items():
    if sysname != "wideserve":
        continue
    y = rows.get(("dynamo", driver, c))
    if y:
        print(f"ratio c={c} ({driver}): req/s wideserve/dynamo = {w['rps'] / y['rps']:.2f}x; "
              f"added TTFT p50 {w['at']:.2f} vs {y['at']:.2f} ms; "
              f"added ITL p50 {w['ai']:.2f} vs {y['ai']:.2f} ms")
EOF
