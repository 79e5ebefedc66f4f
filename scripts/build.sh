#!/usr/bin/env bash
# Configures and builds one flavour of Ember.
#   scripts/build.sh release   -> build/        (gcc, -O2, -Werror)
#   scripts/build.sh asan      -> build-asan/   (clang, ASan + UBSan)
#   scripts/build.sh fuzz      -> build-fuzz/   (clang, libFuzzer targets)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ember-ccache}
# Paths relative to the clone, so that other clones and worktrees (and CI's fresh clone) hit the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
jobs=$(nproc)
case "$flavour" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang
                              -DCMAKE_CXX_COMPILER=clang++ -DEMBER_SANITIZE=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang
                              -DCMAKE_CXX_COMPILER=clang++ -DEMBER_FUZZ=ON -DEMBER_TESTS=OFF) ;;
  *) echo "error: unknown flavour '$flavour' (release, asan, fuzz)" >&2; exit 1 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
