#!/usr/bin/env bash
# Session 10 closing device call, the tree at the end of the session: the fused small-MoE down
# launch's new split (one item per warp at one token, two 8-row groups per CTA from two), MLA v5's
# bulk-copy epilogue and the earlier session-10 changes. MoE smoke test first, then the whole GPU
# suite, then the decode steps (and prefill) of both models with the call-2 binary
# (model_step_bench_b in .devpack_before: before the MLA epilogue and the MoE down split) and the
# final one side by side. Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session10_final_run.sh",
#           carry=[".devpack", ".devpack_before"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
b=$PWD/.devpack_before
step smoke 60 backend_cuda_tests --gtest_filter='*MoeSmall*:CudaMoePipeline.*'
grep -q "rc=0" "$out/smoke.log" || exit 1
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
for preset in v3 v2-lite; do
  extra=""
  [ "$preset" = v3 ] && extra="--layers 4 --fp8"
  step "${preset}_before" 100 "$b/model_step_bench_b" --preset $preset $extra --reps 30 \
    --prefills 1 --batches 1,2,32,128,256
  grep -E "^\| [0-9]|bandwidth" "$out/${preset}_before.log"
  step "${preset}_final" 120 model_step_bench --preset $preset $extra --reps 30 \
    --prefills 2048,8192 --batches 1,2,32,128,256
  grep -E "^\| [0-9]|bandwidth" "$out/${preset}_final.log"
done
