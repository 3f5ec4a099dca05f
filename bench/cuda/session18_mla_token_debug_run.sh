#!/usr/bin/env bash
# Device call (session 18): where the MlaToken test crashes (gdb or compute-sanitizer), and the
# per-CTA timeline (trace build) of a V2-Lite batch-1 step with the clustered attention core on
# and off.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench \
#     bench/trace_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
which gdb compute-sanitizer; ls /usr/local/cuda/bin | grep -i sanit
if command -v gdb > /dev/null; then
  step gdb 200 gdb -batch -ex run -ex bt --args .devpack/backend_cuda_tests_dbg --gtest_filter='MlaToken.*'
  tail -40 "$out/gdb.log"
fi
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$SAN" ]; then
  step san 200 "$SAN" backend_cuda_tests --gtest_filter='MlaToken.*'
  grep -vE "^\[ " "$out/san.log" | head -40
fi
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1"
step trace_on 100 trace_model_step_bench $v2 --trace "$out/on" --mla-token on
grep -E "^\||trace" "$out/trace_on.log" | head -30
step trace_off 100 trace_model_step_bench $v2 --trace "$out/off" --mla-token off
grep -E "^\||trace" "$out/trace_off.log" | head -30
