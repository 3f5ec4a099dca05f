#!/usr/bin/env bash
# `wideserve bench` against aiperf: one server (`wideserve frontend` + `wideserve worker --engine
# mock`), one workload, both load generators run back to back (alternating, REPEATS times), and a
# table of output token throughput, request throughput, median TTFT and median per-token latency.
#
# Like with like: aiperf's "inter token latency" is per request (latency - TTFT) / (tokens - 1),
# i.e. our TPOT; aiperf's "inter chunk latency" is the pooled gap between chunks, i.e. our ITL.
# aiperf is given --use-server-token-count so both count tokens from the server's usage.
#
# Usage: bench/bench_vs_aiperf.sh [--slow-mock] [CONCURRENCY:REQUESTS ...]
#   default: 1:40 16:320 64:640 on a fast mock (10 ms steps, prefill 100000 tok/s, TTFT ~15 ms);
#   --slow-mock: 1:20 4:60 8:120 on a slow mock (40 ms steps, prefill 2000 tok/s, so TTFT ~105 ms
#   for 128 input tokens), with CALIBRATE=0 and warm-up max(C,2) unless set. It is for small boxes,
#   where the peer's own client time (a few ms) and its limit on requests in flight would otherwise
#   be what the comparison measures: latencies large against client overheads, and concurrencies
#   the peer can sustain. At C>1 the mock's 40 ms steps make TTFT depend on how requests group
#   into steps, which each generator's send timing shapes (docs/perf.md): compare TTFT at C=1.
# Env: WS_BINARY (build-perf/wideserve), PEER_VENV (/work/venv-peer), DECODE_MS (10; 40 slow),
#      PREFILL_TPS (100000; 2000 slow), ISL (128), OSL (64), ENDPOINT (chat), REPEATS (2; 0 =
#      calibration only), WARMUP (warm-up requests; max(C,5), slow max(C,2)), KEEP (1 = keep
#      the work dir), CALIBRATE (1; slow 0): also run both generators against
#      tests/e2e/bench/fake_openai_server.py, whose schedule is known exactly (first token 50 ms
#      after the request is read, then one token every 10 ms), to tell which generator is right
#      where they disagree;
#      REPORT_DIR=DIR: only print the tables of a run kept with KEEP=1.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
ws="${WS_BINARY:-$here/build-perf/wideserve}"
venv="${PEER_VENV:-/work/venv-peer}"
py="$venv/bin/python"
aiperf="$venv/bin/aiperf"
slow=0
if [ "${1:-}" = --slow-mock ]; then
  slow=1
  shift
fi
if [ "$slow" = 1 ]; then
  decode_ms="${DECODE_MS:-40}"
  prefill_tps="${PREFILL_TPS:-2000}"
  calibrate="${CALIBRATE:-0}"
  min_warm=2
else
  decode_ms="${DECODE_MS:-10}"
  prefill_tps="${PREFILL_TPS:-100000}"
  calibrate="${CALIBRATE:-1}"
  min_warm=5
fi
isl="${ISL:-128}"
osl="${OSL:-64}"
endpoint="${ENDPOINT:-chat}"
repeats="${REPEATS:-2}"
runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  if [ "$slow" = 1 ]; then runs=(1:20 4:60 8:120); else runs=(1:40 16:320 64:640); fi
fi

if [ -n "${REPORT_DIR:-}" ]; then  # only print the tables of an earlier run kept with KEEP=1
  work="$REPORT_DIR"
  cd "$work"
else
  # Python must not start in /tmp itself (a stray module there can shadow the stdlib).
  work="$(mktemp -d /tmp/bench_vs_aiperf.XXXXXX)"
  cd "$work"
  pids=()
  finish() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
  }
  trap finish EXIT
  free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

  "$ws" make-model --preset tiny --out "$work/model" --seed 0 >/dev/null 2>&1
  model="$work/model"
  name=tiny
  http=$(free_port)
  dport=$(free_port)
  "$ws" frontend --http-port "$http" --discovery "embedded://127.0.0.1:$dport" --log-level warning \
    >"$work/frontend.log" 2>&1 &
  pids+=($!)
  "$ws" worker --engine mock --mock-decode-ms "$decode_ms" \
    --mock-prefill-tokens-per-s "$prefill_tps" --max-running-requests 1024 --model-path "$model" \
    --served-model-name "$name" --discovery "embedded://127.0.0.1:$dport" --log-level warning \
    >"$work/worker.log" 2>&1 &
  pids+=($!)
  url="http://127.0.0.1:$http"
  for i in $(seq 1 240); do
    curl -sf "$url/v1/models" 2>/dev/null | grep -q "\"$name\"" && break
    sleep 0.25
  done

  for r in "${runs[@]}"; do
    c="${r%%:*}"
    n="${r##*:}"
    warm="${WARMUP:-$((c < min_warm ? min_warm : c))}"
    for k in $(seq 1 "$repeats"); do
      echo "== concurrency $c requests $n repeat $k" >&2
      "$ws" bench --url "$url" --model "$name" --endpoint "$endpoint" --dataset random \
        --input-len "$isl" --output-len "$osl" --random-range-ratio 1 --tokenizer "$model" \
        --concurrency "$c" --num-requests "$n" --warmup-requests "$warm" --seed "$k" \
        --output-json "$work/ws_c${c}_$k.json" --output-csv "$work/ws_c${c}_$k.csv" \
        >"$work/ws_c${c}_$k.txt" 2>&1
      "$aiperf" profile --model "$name" --url "$url" --endpoint-type "$endpoint" --streaming \
        --tokenizer "$model" --synthetic-input-tokens-mean "$isl" --synthetic-input-tokens-stddev 0 \
        --output-tokens-mean "$osl" --output-tokens-stddev 0 --extra-inputs ignore_eos:true \
        --use-server-token-count --concurrency "$c" --request-count "$n" \
        --warmup-request-count "$warm" --random-seed "$k" --ui-type none --no-server-metrics \
        --artifact-dir "$work/ap_c${c}_$k" >"$work/ap_c${c}_$k.log" 2>&1 || {
        tail -n 20 "$work/ap_c${c}_$k.log" >&2
        exit 1
      }
    done
  done

  if [ "$calibrate" = 1 ]; then
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    fport=$(free_port)
    python3 "$here/tests/e2e/bench/fake_openai_server.py" --port "$fport" --ttft-ms 50 --itl-ms 10 \
      >"$work/fake.log" 2>&1 &
    pids+=($!)
    sleep 1
    furl="http://127.0.0.1:$fport"
    for c in 1 16; do
      n=$((c == 1 ? 30 : 160))
      echo "== calibration (fake server) concurrency $c" >&2
      "$ws" bench --url "$furl" --model "$name" --endpoint "$endpoint" --dataset random \
        --input-len "$isl" --output-len "$osl" --random-range-ratio 1 --concurrency "$c" \
        --num-requests "$n" --warmup-requests 5 --output-json "$work/cal_ws_c$c.json" \
        >"$work/cal_ws_c$c.txt" 2>&1
      "$aiperf" profile --model "$name" --url "$furl" --endpoint-type "$endpoint" --streaming \
        --tokenizer "$model" --synthetic-input-tokens-mean "$isl" --synthetic-input-tokens-stddev 0 \
        --output-tokens-mean "$osl" --output-tokens-stddev 0 --extra-inputs ignore_eos:true \
        --use-server-token-count --concurrency "$c" --request-count "$n" --warmup-request-count 5 \
        --ui-type none --no-server-metrics --artifact-dir "$work/cal_ap_c$c" >"$work/cal_ap_c$c.log" 2>&1
    done
  fi

fi

"$py" - "$work" "$repeats" "${runs[@]}" <<'EOF'
import json, sys, pathlib
work, repeats, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
# "in flight": mean requests in flight; ours by Little's law (mean E2E x completed / duration),
# aiperf's own effective_concurrency.
print("| conc | run | generator | in flight | req/s | out tok/s | TTFT p50 ms | TPOT p50 ms (aiperf ITL) | "
      "ITL p50 ms (aiperf ICL) | E2E p50 ms | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
worst = {}
diffs = []
for r in runs:
    c = r.split(":")[0]
    for k in range(1, repeats + 1):
        w = json.loads((work / f"ws_c{c}_{k}.json").read_text())["results"]
        a = json.loads(next((work / f"ap_c{c}_{k}").rglob("profile_export_aiperf.json")).read_text())
        ws = dict(rps=w["request_throughput"], tps=w["output_token_throughput"],
                  ttft=w["ttft_ms"]["p50"], tpot=w["tpot_ms"]["p50"], itl=w["itl_ms"]["p50"],
                  e2e=w["e2e_latency_ms"]["p50"], err=w["failed"])
        ws["inflight"] = w["e2e_latency_ms"]["mean"] * w["completed"] / 1e3 / w["duration_s"]
        ap = dict(rps=a["request_throughput"]["avg"], tps=a["output_token_throughput"]["avg"],
                  inflight=a["effective_concurrency"]["avg"],
                  ttft=a["time_to_first_token"]["p50"], tpot=a["inter_token_latency"]["p50"],
                  itl=a["inter_chunk_latency"]["p50"], e2e=a["request_latency"]["p50"],
                  err=int((a.get("error_request_count") or {}).get("avg", 0)))
        for g, v in (("wideserve bench", ws), ("aiperf 0.13.0", ap)):
            print(f"| {c} | {k} | {g} | {v['inflight']:.1f} | {v['rps']:.2f} | {v['tps']:.1f} | {v['ttft']:.2f} | "
                  f"{v['tpot']:.3f} | {v['itl']:.3f} | {v['e2e']:.1f} | {v['err']} |")
        diffs.append((c, k, {}))
        for key in ("rps", "tps", "ttft", "tpot", "itl"):
            d = (ws[key] - ap[key]) / ap[key] * 100 if ap[key] else float("inf")
            diffs[-1][2][key] = d
            if abs(d) > abs(worst.get((c, key), 0)):
                worst[(c, key)] = d
            worst.setdefault((c, key), d)
print()
print("Difference (wideserve bench - aiperf) / aiperf, per run; * = outside 5%")
print("| conc | run | req/s | out tok/s | TTFT p50 | TPOT p50 (aiperf ITL) | ITL p50 (aiperf ICL) |")
print("|---|---|---|---|---|---|---|")
for c, k, d in diffs:
    print(f"| {c} | {k} | " + " | ".join(
        f"{d[x]:+.1f}%{'*' if abs(d[x]) > 5 else ''}" for x in ("rps", "tps", "ttft", "tpot", "itl")) + " |")
print()
for r in runs if repeats > 0 else []:
    c = r.split(":")[0]
    print(f"c={c}: largest difference (wideserve bench - aiperf) / aiperf over the runs: " + ", ".join(
        f"{k} {worst[(c, k)]:+.1f}%" for k in ("rps", "tps", "ttft", "tpot", "itl")))
cal = [c for c in ("1", "16") if (work / f"cal_ws_c{c}.json").exists()]
if cal:
    print()
    print("Calibration: fake server, TTFT = 50 ms after the request is read, then 10 ms per token")
    print("| conc | generator | TTFT p50 ms | TTFT p90 ms | TPOT p50 ms (aiperf ITL) | ITL p50 ms (aiperf ICL) | req/s |")
    print("|---|---|---|---|---|---|---|")
    for c in cal:
        w = json.loads((work / f"cal_ws_c{c}.json").read_text())["results"]
        a = json.loads(next((work / f"cal_ap_c{c}").rglob("profile_export_aiperf.json")).read_text())
        print(f"| {c} | wideserve bench | {w['ttft_ms']['p50']:.2f} | {w['ttft_ms']['p90']:.2f} | "
              f"{w['tpot_ms']['p50']:.3f} | {w['itl_ms']['p50']:.3f} | {w['request_throughput']:.2f} |")
        print(f"| {c} | aiperf 0.13.0 | {a['time_to_first_token']['p50']:.2f} | "
              f"{a['time_to_first_token']['p90']:.2f} | {a['inter_token_latency']['p50']:.3f} | "
              f"{a['inter_chunk_latency']['p50']:.3f} | {a['request_throughput']['avg']:.2f} |")
EOF
