#!/usr/bin/env bash
# Session 10 device call 2: the residual add folded into the next RMSNorm (RmsNormParams::add),
# the vector embedding kernel, PDL on the MoE row kernels (gather, SiLU-and-mul, combine, small
# align), on top of call 1's stacked q_a + kv_a GEMM. New GPU tests first, then the whole suite,
# then the decode steps of both models with the call-1 binary (model_step_bench_a, carried in
# .devpack_before) and the current one side by side. Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session10_fused_run.sh",
#           carry=[".devpack", ".devpack_before"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke 60 backend_cuda_tests \
  --gtest_filter='CudaOps.RmsNormWithResidual*:CudaOps.Embedding*:CudaWeights.*:*Autotuned*'
grep -q "rc=0" "$out/smoke.log" || exit 1
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
before=$PWD/.devpack_before/model_step_bench_a
for preset in v3 v2-lite; do
  extra=""
  [ "$preset" = v3 ] && extra="--layers 4 --fp8"
  for bin in "$before" model_step_bench; do
    tag=$(basename "$bin")
    step "${preset}_$tag" 100 "$bin" --preset $preset $extra --reps 20 --prefills 1 \
      --batches 1,32,128,256
    grep -E "^\| [0-9]|bandwidth" "$out/${preset}_$tag.log"
  done
done
