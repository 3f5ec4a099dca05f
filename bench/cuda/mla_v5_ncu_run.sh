#!/usr/bin/env bash
# Session 9 device call: ncu sections of one v5 launch (64 x 4k, 128 heads) after the
# FlashAttention-3 consumer order: throughput, warp stalls, scheduler, memory, compute pipes,
# and source-level stall sampling of the hottest instructions.
# Pack first (here): scripts/device_pack.sh build-cuda bench/mla_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/mla_v5_ncu_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step ncu_v5 200 "$NCU" --clock-control none -k regex:mla_decode_wgmma -c 1 \
  --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
  --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section Occupancy \
  --section InstructionStats --section SourceCounters \
  mla_bench --kernel v5 --heads 128
grep -v "^==PROF==" "$out/ncu_v5.log" | sed -n '/mla_decode_wgmma/,$p' | head -250
