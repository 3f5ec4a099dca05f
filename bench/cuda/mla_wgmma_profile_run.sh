#!/usr/bin/env bash
# Session 8 device call: v5 (wgmma MLA decode) tests, mla_bench v4 | v5 at 128 heads, and an ncu
# section profile of one v5 launch (64 x 4k, 128 heads): throughput, warp stalls, scheduler, memory.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/mla_bench \
#   bench/model_step_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/mla_wgmma_profile_run.sh",
#           carry=[".devpack"], timeout_s=600)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
# A barrier-protocol hang costs 60 s, not the call.
step smoke_v5 60 backend_cuda_tests --gtest_filter='*MlaDecode.ManyHeads/v5*'
grep -q "rc=0" "$out/smoke_v5.log" || exit 1
step mla_tests 200 backend_cuda_tests --gtest_filter='*MlaDecode*v5*'
grep -E "FAILED|Failure" "$out/mla_tests.log" | head -20
step mla_bench 150 mla_bench --kernel v4v5 --heads ${HEADS:-128}
grep -E "copy|decode" "$out/mla_bench.log"
if [ -n "${NCU_V5:-}" ] && [ -n "$NCU" ]; then
  step ncu_v5 180 "$NCU" --clock-control none -k regex:mla_decode_wgmma -c 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section Occupancy \
    mla_bench --kernel v5 --heads 128
  grep -v "^==PROF==" "$out/ncu_v5.log" | sed -n '/mla_decode_wgmma/,$p' | head -150
fi
if [ -n "${STEP:-}" ]; then
  step v3_v5 120 model_step_bench --preset v3 --layers 4 --fp8 --reps 20 --prefills 1 \
    --batches 1,32,128,256 --mla-decode v5
  grep -E "^\| [0-9]|bandwidth" "$out/v3_v5.log"
fi
