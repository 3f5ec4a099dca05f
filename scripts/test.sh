#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test (unit + e2e) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 1200
