#!/usr/bin/env bash
# Session 10 device call: MLA v5's epilogue with the output rows staged in the free KV ring and
# written by bulk copies (TMA engine) against the per-thread stores, side by side: GPU tests of
# the MLA kernels and graphs, mla_bench with --v5-bulk-store on / off (twice, interleaved), the
# per-CTA trace of a -DWS_MLA_TRACE build (mla_bench_trace), and the V3 decode step with the
# call-2 binary (model_step_bench_b) and the current one. Pack first:
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# with .devpack_before holding mla_bench, mla_bench_trace and model_step_bench_b; then
# run(command="bash bench/cuda/device_run.sh bash bench/cuda/session10_mla_store_run.sh",
#     carry=[".devpack", ".devpack_before"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
b=$PWD/.devpack_before
step smoke 120 backend_cuda_tests --gtest_filter='*MlaDecode*:*MlaAttention*:CudaGraphWorkspace.*:Fixtures/*'
grep -q "rc=0" "$out/smoke.log" || exit 1
for round in 1 2; do
  for v in on off; do
    step "mla_${v}_$round" 60 "$b/mla_bench" --kernel v5 --heads 128 --v5-bulk-store $v
    grep -E "copy|^decode" "$out/mla_${v}_$round.log"
  done
done
step trace 60 "$b/mla_bench_trace" --trace 64,4096,256,1024
tail -9 "$out/trace.log"
for round in 1 2; do
  for bin in "$b/model_step_bench_b" model_step_bench; do
    tag=$(basename "$bin")_$round
    step "v3_$tag" 100 "$bin" --preset v3 --layers 4 --fp8 --reps 30 --prefills 1 \
      --batches 1,128,256
    grep -E "^\| [0-9]|bandwidth" "$out/v3_$tag.log"
  done
done
