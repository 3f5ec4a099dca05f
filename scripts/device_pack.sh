#!/usr/bin/env bash
# Packs binaries of a CUDA build for a device-tool run: stripped copies and the shared libraries the
# GPU machine lacks (only those these binaries need), as .devpack/bins.tar.xz and libs.tar.xz (a
# few MB under the 64 MiB carry limit). On the device: bash bench/cuda/device_run.sh CMD...
# Usage: scripts/device_pack.sh BUILD_DIR BINARY...   (binary paths relative to BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1
shift
rm -rf .devpack/stage .devpack/libs
mkdir -p .devpack/stage .devpack/libs
for b in "$@"; do
  strip -o ".devpack/stage/$(basename "$b")" "$build/$b"
done
DEVLIBS_DIR=.devpack/libs bash scripts/device_bundle.sh .devpack/stage/*
tar -C .devpack/stage -cJf .devpack/bins.tar.xz .
tar -C .devpack/libs -cJf .devpack/libs.tar.xz .
rm -rf .devpack/stage .devpack/libs
du -sh .devpack/*.tar.xz
