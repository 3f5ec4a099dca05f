#!/usr/bin/env bash
# Closing device call (session 12): the input RMSNorm made by the q + kv_a GEMV pair
# (--norm-in-gemv) with its GPU tests, decode steps with it off / on in interleaved rounds (same
# binary, V2-Lite at batch 1, 2, 4), then the decode table of both models at batch 1-256 and the
# whole GPU suite. (An earlier version of this call also measured the absorbed query as per-head
# GEMVs over W_UK^T, --absorb-gemv: no gain, removed; docs/perf.md, session 12.)
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session12_decode_gemv_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke 200 backend_cuda_tests \
  --gtest_filter='GemmBf16.*:CudaDecodeGemvModel*:Fixtures/*'
grep -E "Failure|Expected|Which is" "$out/smoke.log" | head -20
for rep in 1 2; do
  for n in off on; do
    name="v2lite_norm${n}_$rep"
    step "$name" 100 model_step_bench --preset v2-lite --reps 30 --prefills 1 --batches 1,2,4 \
      --cuda-graph-max-bs 4 --norm-in-gemv "$n"
    echo "V2-Lite norm in GEMV $n:"
    grep -E "^\| [0-9]" "$out/$name.log"
  done
done
step table_v3 150 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
  --batches 1,2,32,128,256 --cuda-graph-max-bs 256
echo "V3 4 layers FP8:"
grep -E "^\| [0-9]|copy" "$out/table_v3.log"
step table_v2lite 150 model_step_bench --preset v2-lite --reps 20 --prefills 1 \
  --batches 1,2,32,128,256 --cuda-graph-max-bs 256
echo "V2-Lite:"
grep -E "^\| [0-9]|copy" "$out/table_v2lite.log"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
