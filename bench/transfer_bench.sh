#!/usr/bin/env bash
# KV transfer throughput between two processes on this host: our UCX agent (`wideserve
# transfer-test`, page-sized ops to every other destination page, so nothing merges; one
# notification per 64 MiB transfer) next to `ucx_perftest -t ucp_put_bw` with the same message
# size and UCX transport, and our TCP backend. Prints a markdown table (GB/s = 1e9 bytes/s).
#
# usage: bench/transfer_bench.sh [--bytes N] [--sizes "4096 16384 65536"] [--tls "tcp sm"]
# env: WS_BINARY (default build/wideserve), UCX_PERFTEST (default ucx_perftest)
set -euo pipefail
BIN=${WS_BINARY:-build/wideserve}
PERFTEST=${UCX_PERFTEST:-ucx_perftest}
BYTES=$((1 << 30))
SIZES="4096 16384 65536"
TLS_LIST="tcp sm"
ITERS=4
while (($#)); do
  case "$1" in
    --bytes) BYTES=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --tls) TLS_LIST=$2; shift 2 ;;
    --iters) ITERS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PORT=$((20000 + RANDOM % 20000))

# UCX_TLS spelling of a transport column: "sm" = shared memory (posix/sysv/cma) plus self.
ucx_tls() { if [[ $1 == sm ]]; then echo "sm,self"; else echo "$1"; fi; }

# Our agent: best GB/s over $ITERS iterations of $BYTES in ops of $2 bytes.
run_agent() {  # backend tls op_bytes
  local backend=$1 tls=$2 op=$3 meta="$TMP/meta-$RANDOM.json"
  local common=(--backend "$backend" --metadata-file "$meta" --bytes "$BYTES" --op-bytes "$op"
    --transfers $((BYTES / (64 << 20))) --iters "$ITERS" --listen-host 127.0.0.1)
  [[ $backend == ucx ]] && common+=(--ucx-tls "$(ucx_tls "$tls")")
  "$BIN" transfer-test --role target "${common[@]}" --no-verify --serve-seconds 600 \
    >"$TMP/target.out" 2>"$TMP/target.err" &
  local tpid=$!
  local out
  out=$("$BIN" transfer-test --role initiator "${common[@]}" 2>"$TMP/init.err") || {
    echo "initiator failed: $out $(cat "$TMP/init.err")" >&2; kill $tpid; return 1; }
  wait $tpid || { echo "target failed: $(cat "$TMP/target.out" "$TMP/target.err")" >&2; return 1; }
  python3 -c 'import json,sys; print("%.3f" % [json.loads(l) for l in sys.stdin if l.startswith("{")][-1]["best_gbps"])' <<<"$out"
}

# ucx_perftest ucp_put_bw: GB/s of the final line (its MB/s column is MiB/s).
run_perftest() {  # tls size
  local tls size=$2 n
  tls=$(ucx_tls "$1")
  n=$((BYTES / size))
  PORT=$((PORT + 1))
  UCX_TLS=$tls "$PERFTEST" -p $PORT >"$TMP/pt-server.log" 2>&1 &
  local spid=$!
  sleep 1
  local line
  line=$(UCX_TLS=$tls "$PERFTEST" 127.0.0.1 -p $PORT -t ucp_put_bw -s "$size" -n "$n" -w 1000 \
    2>&1 | grep -E '^Final:' | tail -1)
  wait $spid || true
  # Final: iterations lat50 lat_avg lat_overall bw_avg bw_overall ...
  awk '{printf "%.3f\n", $7 * 1048576 / 1e9}' <<<"$line"
}

echo "| transport | op size | ucx_perftest ucp_put_bw GB/s | wideserve UCX agent GB/s | agent / perftest | wideserve TCP backend GB/s |"
echo "|---|---|---|---|---|---|"
for tls in $TLS_LIST; do
  for size in $SIZES; do
    pt=$(run_perftest "$tls" "$size")
    ag=$(run_agent ucx "$tls" "$size")
    if [[ $tls == tcp ]]; then tc=$(run_agent tcp tcp "$size"); else tc="-"; fi
    ratio=$(awk -v a="$ag" -v p="$pt" 'BEGIN { if (p > 0) printf "%.2f", a / p; else print "-" }')
    echo "| UCX_TLS=$(ucx_tls "$tls") | $((size / 1024)) KiB | $pt | $ag | $ratio | $tc |"
  done
done
