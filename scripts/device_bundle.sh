#!/usr/bin/env bash
# Copies the shared libraries that the given binaries need and the GPU machine (Ubuntu 24.04 with
# CUDA 13.0, no apt) lacks into .devlibs/, so a device-tool run can `carry` them and set
# LD_LIBRARY_PATH=.devlibs:/usr/local/cuda/lib64. glibc, libstdc++ and CUDA's own libraries stay.
# DEVLIBS_DIR overrides the destination (scripts/device_pack.sh packs from its own).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${DEVLIBS_DIR:-.devlibs}
mkdir -p "$dest"
for bin in "$@"; do
  ldd "$bin" | awk '/=> \// {print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
      libcuda.so*|libcublas*|libcudart*|libnccl*|libnvidia*) ;;
      *) cp -Lu "$lib" "$dest/" ;;
    esac
  done
done
du -sh "$dest"
