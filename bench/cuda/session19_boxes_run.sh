#!/usr/bin/env bash
# Session 19: mla_token's cache rows by tensor-map boxes of 16 rows into a 128-byte-swizzled ring
# (default where page_size % 16 == 0) against one bulk copy per row into the padded ring
# (--mla-token-row-copies): V2-Lite batch 1 interleaved, both launches' phase stamps in the step
# and alone; the MlaToken and model GPU tests first.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests \
#   bench/model_step_bench bench/mla_token_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_boxes_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 200 backend_cuda_tests --gtest_filter='MlaToken*:CudaDecodeGemvModel*'
grep -E "FAILED|Failure|Expected|Which is|mla-token" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1"
decode_ab 3 "rows=model_step_bench $v2 --mla-token-row-copies" "boxes=model_step_bench $v2"
for v in rows boxes; do
  f=""
  [ $v = rows ] && f=--mla-token-row-copies
  step "stamps_$v" 100 model_step_bench $v2 --mla-token-stamps $f
  echo "$v:"
  grep -E "^\| (wait|q, W|absorb|chunk 0|attention done|partials|exit|0: row)|^\| 1 \|" \
    "$out/stamps_$v.log"
  fa=""
  [ $v = rows ] && fa=--row-copies
  step "alone_$v" 60 mla_token_bench $fa
  grep -E "us per launch|^\| (wait|chunk 0 landed|attention done|exit)" "$out/alone_$v.log"
done
