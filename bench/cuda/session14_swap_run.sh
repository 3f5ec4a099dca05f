#!/usr/bin/env bash
# Device call (session 14): the FP8 grouped expert GEMM with swapped operands (weights as the
# 128-row M operand, each expert's rows as a 16- or 32-wide N tile) against the row-tiled kernel,
# alone at V3 decode-sized groups (moe_bench --decode, with the card's read-only rate) and in the
# V3 4-layer FP8 decode step (--moe-grouped rows | swap, interleaved), plus the grouped GEMM and
# MoE GPU tests. (The first run of this call also had a 16-wide N tile, swap16, since removed:
# docs/cuda_moe.md.)
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench bench/moe_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session14_swap_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step moe_tests 200 backend_cuda_tests --gtest_filter='CudaMoe*:*Fixture*'
grep -E "FAILED|Failure|grouped fp8 kernel [23]" "$out/moe_tests.log" | head -30
step decode_bench 150 moe_bench --decode
grep -E "^\||copy" "$out/decode_bench.log"
for round in 1 2; do
  for g in rows swap; do
    step step_${g}_$round 120 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 \
      --prefills 1 --batches 32,128,256 --cuda-graph-max-bs 256 --moe-grouped $g
    echo "$g round $round:"
    grep -E "^\| [0-9]" "$out/step_${g}_$round.log"
  done
done
