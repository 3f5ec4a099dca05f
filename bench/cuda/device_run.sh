#!/usr/bin/env bash
# Runs on the device machine: unpacks the carried binaries and shared libraries (.devpack, made by
# scripts/device_pack.sh here), then runs the given command with them on the path.
set -euo pipefail
mkdir -p /tmp/ws/bin /tmp/ws/lib
tar -C /tmp/ws/bin -xJf .devpack/bins.tar.xz
tar -C /tmp/ws/lib -xJf .devpack/libs.tar.xz
export LD_LIBRARY_PATH=/tmp/ws/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=/tmp/ws/bin:$PATH WIDESERVE_DATA_DIR=$PWD/data
"$@"
