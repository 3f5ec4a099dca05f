#!/usr/bin/env bash
# Device call (session 13): ncu on one MLA decode v6 launch (64 x 4k, 128 heads):
# throughput, warp states, scheduler, pipes, and per-SASS-line stall samples (source page, CSV).
# Pack first (here): scripts/device_pack.sh build-cuda bench/mla_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session13_v6_ncu_run.sh",
#           carry=[".devpack"], timeout_s=400)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step ncu_v6 250 "$NCU" --clock-control none -k regex:mla_decode_tma -c 1 -o "$out/v6" \
  --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
  --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section Occupancy \
  --section InstructionStats --section SourceCounters \
  mla_bench --kernel v6 --heads 128
"$NCU" --import "$out/v6.ncu-rep" --page details > "$out/v6_details.txt" 2>&1
"$NCU" --import "$out/v6.ncu-rep" --page source --csv --print-source sass > "$out/v6_sass.csv" 2>&1
grep -E "Frequency|Duration|Throughput|Busy|Issue|Eligible|Active Warps|Pipe|Stall|No Eligible" \
  "$out/v6_details.txt" | head -60
wc -l "$out/v6_sass.csv"
rm -f "$out/v6.ncu-rep"
