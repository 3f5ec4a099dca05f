#!/usr/bin/env bash
# Sourced by the device-call scripts in this folder: sets $out ($OUT, where a call's files come
# back), records the GPU, and defines `step NAME LIMIT CMD...`, which runs CMD under its own time
# limit (a hang in one step must not eat the call) with its output in $out/NAME.log, then prints
# its exit status and any GoogleTest summary lines, `decode_tables` (the closing calls' decode
# table of both models) and `decode_ab` (interleaved A/B rounds of decode steps). $NCU is Nsight
# Compute's binary, if present.
out=${OUT:-/tmp/out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,memory.total --format=csv | tee "$out/gpu.txt"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
step() {
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "rc=$?" | tee -a "$out/$name.log"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST|tests? ran" "$out/$name.log" | tail -25
}
# The closing calls' decode table: V3 (4 layers, FP8) and V2-Lite at batch 1-256 in graphs.
decode_tables() {
  step table_v3 150 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
    --batches 1,2,32,128,256 --cuda-graph-max-bs 256
  echo "V3 4 layers FP8:"
  grep -E "^\| [0-9]|copy|kernels" "$out/table_v3.log"
  step table_v2lite 150 model_step_bench --preset v2-lite --reps 20 --prefills 1 \
    --batches 1,2,32,128,256 --cuda-graph-max-bs 256
  echo "V2-Lite:"
  grep -E "^\| [0-9]|copy" "$out/table_v2lite.log"
}
# decode_ab ROUNDS NAME=COMMAND...: ROUNDS rounds, each running every COMMAND (a
# model_step_bench line, word-split) in the order given as step NAME_<round>, then printing its
# decode rows on one line as NAME/<round>: the interleaved A/B of the device-call scripts.
decode_ab() {
  local rounds=$1 r v name
  shift
  for r in $(seq 1 "$rounds"); do
    for v in "$@"; do
      name=${v%%=*}
      # shellcheck disable=SC2086  # the command is word-split on purpose
      step "${name}_$r" 100 ${v#*=}
      echo "$name/$r: $(grep -E "^\| [0-9]+ \| [0-9]+ \|" "$out/${name}_$r.log" | tr '\n' ' ')"
    done
  done
}
