#!/usr/bin/env bash
# Session 19: mla_token alone (mla_token_bench, 27 launches over distinct weights and pages in
# one graph): what a cluster of 16 costs against 8 at the same CTA count (16 heads x cluster 16
# and 32 heads x cluster 8 are both 128 CTAs), and half the rows per CTA (512 cached tokens).
# Pack first (here): scripts/device_pack.sh build-cuda bench/mla_token_bench
# then: run(command="bash bench/cuda/device_run.sh bash bench/cuda/session19_cluster_run.sh",
#           carry=[".devpack"], timeout_s=300)
set -uo pipefail
. "$(dirname "$0")/device_steps.sh"
for v in "h16c8=--heads 16 --cluster 8" "h16c16=--heads 16 --cluster 16" \
  "h32c8=--heads 32 --cluster 8" "h16c8_512=--heads 16 --cluster 8 --context 512"; do
  name=${v%%=*}
  # shellcheck disable=SC2086
  step "$name" 60 mla_token_bench ${v#*=}
  echo "$name:"
  grep -E "us per launch|^\| (wait|q, W|absorb|chunk 0 landed|attention done|partials|combine|exit)" \
    "$out/$name.log"
done
