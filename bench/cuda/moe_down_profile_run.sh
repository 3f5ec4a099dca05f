#!/usr/bin/env bash
# Why the fused MoE's BF16 down launch runs at ~55% of its bytes floor at T = 1 (V2-Lite): ncu
# sections (speed of light, warp stall reasons, memory workload, occupancy) of its first launches
# in moe_bench --small (the V2-Lite T = 1 case comes first), clocks and caches left alone.
# Pack first (here): scripts/device_pack.sh build-cuda bench/moe_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/moe_down_profile_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
for k in moe_small_down_kernel moe_small_up_kernel; do
  step "ncu_$k" 120 "$NCU" --clock-control none --cache-control none \
    --kernel-name "regex:$k" --launch-skip 5 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section Occupancy --section LaunchStats --section SchedulerStats moe_bench --small
  grep -vE "^==PROF==|^\s*$" "$out/ncu_$k.log" | sed -n '/moe_small/,$p' | head -120
done
