#!/usr/bin/env bash
# Device call (session 15, measured and dropped): MLA decode splits of a tiny decode step
# (base * 8 <= SMs) down to 64 or 32 cache rows instead of 128. The patch (not in the tree) made
# mla_plan's rows per split `!prefill && base * 8 <= sms ? kMlaSmallSplitRows : 128`, built once
# per value into s64_ / s32_model_step_bench (old_ = 128); the MLA and model GPU tests ran on the
# 32-row build. Numbers: docs/perf.md, session 15.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/old_model_step_bench \
#     bench/s64_model_step_bench bench/s32_model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session15_mla_split_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
export GTEST_FILTER='*Mla*:*Model*:*Graph*'
step gpu_tests 240 backend_cuda_tests
unset GTEST_FILTER
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
v2="--preset v2-lite --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2,8"
v3="--preset v3 --layers 4 --fp8 --reps 30 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2,8"
for r in 1 2; do
  for b in old s64 s32; do
    step ${b}_v2_$r 100 ${b}_model_step_bench $v2
    echo "$b v2 $r: $(grep -E "^\| [128] \| 1024" "$out/${b}_v2_$r.log" | tr '\n' ' ')"
  done
done
for b in old s64 s32; do
  step ${b}_v3 100 ${b}_model_step_bench $v3
  echo "$b v3: $(grep -E "^\| [128] \| 1024" "$out/${b}_v3.log" | tr '\n' ' ')"
done
