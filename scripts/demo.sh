#!/usr/bin/env bash
# Installs dependencies, builds Ember, and runs the main job on its built-in default:
# `ember inspect` on the sample safetensors file that the build writes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release >/dev/null
build/bin/ember inspect build/share/sample.safetensors "$@"
