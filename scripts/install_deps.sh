#!/usr/bin/env bash
# Installs everything wideserve needs to build and test on Debian 12 (run as root). Idempotent.
set -euo pipefail
APT_PKGS=(cmake ninja-build g++ pkg-config python3 python3-pip curl ccache
  libboost-dev libzmq3-dev cppzmq-dev libmsgpack-cxx-dev zlib1g-dev
  libopenblas-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libicu-dev libxxhash-dev libsimdjson-dev
  libucx-dev ucx-utils etcd-server libgloo-dev)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Python test oracles (HF tokenizers / transformers without torch; jinja2 for templates). Pinned to
# the versions the oracle tests were validated with: 5.17 would load the DeepSeek directory as
# LlamaTokenizer (hard-coded Metaspace); 5.24 loads tokenizer.json as is.
PY=${PYTHON:-python3}
PIP_PKGS=("tokenizers==0.23.3" "transformers==5.24.0" jinja2 numpy safetensors openai
  "nvidia-cutlass==4.2.0.0")
if ! "$PY" -c "import tokenizers, transformers, jinja2, numpy, safetensors, openai, cutlass_library" >/dev/null 2>&1; then
  "$PY" -m pip install -q "${PIP_PKGS[@]}" || "$PY" -m pip install -q --break-system-packages "${PIP_PKGS[@]}"
fi
