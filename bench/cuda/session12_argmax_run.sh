#!/usr/bin/env bash
# Device call (session 12): argmax rows split over several CTAs with a last-CTA ticket (ops/argmax.cu).
# Its GPU tests and the model tests that decode greedily, the argmax kernels of a V2-Lite batch-1
# step under ncu (one metric, warm caches; session12_profile_run.sh measured the one-CTA kernel at
# 16.2-16.3 us), then V2-Lite and V3 (4 layers, FP8) decode steps at batch 1 and 2.
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session12_argmax_run.sh",
#           carry=[".devpack"], timeout_s=400)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step tests 200 backend_cuda_tests \
  --gtest_filter='CudaOps.Argmax*:Fixtures/*Greedy*:CudaGraphWorkspace*:CudaDecodeGemvModel*'
grep -E "Failure|Expected|Which is" "$out/tests.log" | head -10
step ncu_argmax 120 "$NCU" --clock-control none --cache-control none --csv \
  --metrics gpu__time_duration.sum --kernel-name regex:argmax model_step_bench --preset v2-lite \
  --layers 2 --reps 1 --prefills 1 --batches 1,32 --cuda-graph-max-bs 0
grep -E '^"' "$out/ncu_argmax.log" | awk -F'","' '{print $5" | "$NF}' | tail -12
step v2lite 100 model_step_bench --preset v2-lite --reps 30 --prefills 1 --batches 1,2 \
  --cuda-graph-max-bs 2
grep -E "^\| [0-9]" "$out/v2lite.log"
step v3 100 model_step_bench --preset v3 --layers 4 --fp8 --reps 30 --prefills 1 --batches 1,2 \
  --cuda-graph-max-bs 2
grep -E "^\| [0-9]" "$out/v3.log"
