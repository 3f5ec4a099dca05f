#!/usr/bin/env bash
# Device call (session 14): the whole GPU suite with the swapped-operand FP8 grouped GEMM as the
# decode default, moe_bench --decode (row tiles vs swapped, with the card's read-only rate), the
# decode table of both models at batch 1-256, and ncu sections of the V2-Lite batch-1 fused MoE
# launches (eager, two layers).
# Pack first (here):
#   scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/model_step_bench bench/moe_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session14_check_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step gpu_tests 300 backend_cuda_tests
grep -E "FAILED|Failure" "$out/gpu_tests.log" | head -20
step decode_bench 150 moe_bench --decode
grep -E "^\||copy" "$out/decode_bench.log"
decode_tables
step ncu_moe_small 120 "$NCU" --clock-control none --section SpeedOfLight \
  --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy \
  --section WarpStateStats -k regex:moe_small model_step_bench --preset v2-lite --layers 2 \
  --reps 1 --prefills 1 --batches 1 --cuda-graph-max-bs 0
grep -E "moe_small|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Grid Size|Block Size|Stall|Warp Cycles Per Issued|L2 Hit|Mem Busy|Max Bandwidth" \
  "$out/ncu_moe_small.log" | head -80
