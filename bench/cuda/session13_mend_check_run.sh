#!/usr/bin/env bash
# Device call (session 13, after the mend that moved the v5 / v6 staged epilogue, the split
# workspace check and the descriptor offset into shared helpers): the MLA and graph GPU tests,
# then mla_bench v5 | v6 at 128 heads.
# Pack first (here): scripts/device_pack.sh build-cuda tests/backend_cuda_tests bench/mla_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session13_mend_check_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
step mla_tests 150 backend_cuda_tests --gtest_filter='*Mla*:CudaGraph*:CudaModel*'
grep -E "Failure|Expected|Which is" "$out/mla_tests.log" | head -20
step mla_bench 120 mla_bench --kernel v5v6 --heads 128
grep -E "decode" "$out/mla_bench.log"
