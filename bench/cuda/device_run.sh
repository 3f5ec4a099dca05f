#!/usr/bin/env bash
# Runs on the device machine: unpacks the carried binaries and shared libraries (.devpack, made by
# scripts/device_pack.sh here; DEVPACK=dir reads another pack, e.g. .devpack2 prepared for the
# next call so that call finds the machine still warm), then runs the given command with them on
# the path.
set -euo pipefail
mkdir -p /tmp/ws/bin /tmp/ws/lib
tar -C /tmp/ws/bin -xJf "${DEVPACK:-.devpack}/bins.tar.xz"
tar -C /tmp/ws/lib -xJf "${DEVPACK:-.devpack}/libs.tar.xz"
export LD_LIBRARY_PATH=/tmp/ws/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=/tmp/ws/bin:$PATH WIDESERVE_DATA_DIR=$PWD/data
"$@"
