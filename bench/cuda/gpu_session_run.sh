#!/usr/bin/env bash
# One device call for issue 9's end-to-end numbers with the kernel defaults measured in
# first_gpu_run.sh (MLA decode v4, small-M FP8 GEMM, small-batch MoE routing/align): the GPU test
# suite, decode/prefill step times against the bytes floor with the new and the old kernels side by
# side, and served tokens/s through HTTP on V3 (4 layers, FP8) and V2-Lite (BF16) dimensions next
# to HF transformers.
# Pack first (here):
#   scripts/device_pack.sh build-cuda wideserve tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/gpu_session_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 150 backend_cuda_tests
old="--mla-decode v3 --moe-path large --fp8-small-m off"
step step_v2lite 60 model_step_bench --preset v2-lite --reps 8
step step_v2lite_old 60 model_step_bench --preset v2-lite --reps 8 --prefills 2048 $old
step step_v3 60 model_step_bench --preset v3 --layers 4 --fp8 --reps 8
step step_v3_old 60 model_step_bench --preset v3 --layers 4 --fp8 --reps 8 --prefills 2048 $old
for f in step_v2lite step_v2lite_old step_v3 step_v3_old; do
  echo "--- $f"
  grep -E "^\||kernels:|bandwidth" "$out/$f.log"
done
export MODEL_ARGS="--preset v3 --layers 4 --fp8"
step served_v3 200 bash bench/cuda/served_bench.sh "$(command -v wideserve)" 64,256
export MODEL_ARGS="--preset v2-lite"
step served_v2lite 200 bash bench/cuda/served_bench.sh "$(command -v wideserve)" 64,256
grep -E "^==|Output token throughput|^P50|^\| |experts|rc=" "$out"/served_v3.log "$out"/served_v2lite.log
