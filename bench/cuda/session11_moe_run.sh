#!/usr/bin/env bash
# Session 11 device call: the small MoE's shared experts on a forked graph branch
# (CudaModelOptions::moe_shared_branch). New GPU tests first, then the small-MoE and dense-FP8
# kernel tables, then decode steps at batch 1 and 2 with the branch on and off, in interleaved
# repeats (the same binary). As run on 2026-11-29 the call also measured a fused router (router
# GEMV + routing in one launch, --fuse-router, moe_bench --router); it was slower and is not in the
# tree (docs/perf.md, session 11). Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench bench/moe_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session11_moe_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step smoke 120 backend_cuda_tests \
  --gtest_filter='*MoeSmall*:*SharedExpertBranch*:*Routing*'
grep -E "rel_l2" "$out/smoke.log" | head -40
step small 60 moe_bench --small
grep -E "^V|^  *[0-9]|T " "$out/small.log" | head -30
step dense 120 moe_bench --dense
cat "$out/dense.log"
for rep in 1 2; do
  for preset in v2-lite v3; do
    extra=""
    [ "$preset" = v3 ] && extra="--layers 4 --fp8"
    for branch in on off; do
      name="${preset}_b${branch}_$rep"
      step "$name" 100 model_step_bench --preset $preset $extra --reps 30 --prefills 1 \
        --batches 1,2 --cuda-graph-max-bs 2 --shared-branch "$branch"
      echo "branch $branch:"
      grep -E "^\| [0-9]" "$out/$name.log"
    done
  done
done
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
