#!/usr/bin/env bash
# Device call (session 20): how many weight blocks the BF16 small-MoE down launch requests before
# pdl_wait at one token: 4 (main, prev), 2, 6 (kB in moe_small_down_bf16.cu, built as separate
# binaries), or none (every load after the wait: post), V2-Lite decode at batch 1-2, interleaved.
# Pack first (here): scripts/device_pack.sh build-cuda bench/prev_model_step_bench \
#   bench/kb2_model_step_bench bench/kb6_model_step_bench bench/post_model_step_bench
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
v2="--preset v2-lite --reps 40 --prefills 1 --cuda-graph-max-bs 256 --batches 1,2"
decode_ab 3 "prev=prev_model_step_bench $v2" "kb2=kb2_model_step_bench $v2" \
  "kb6=kb6_model_step_bench $v2" "post=post_model_step_bench $v2"
