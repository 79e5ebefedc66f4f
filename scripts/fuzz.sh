#!/usr/bin/env bash
# Runs every libFuzzer target in build-fuzz/bin for a bounded time each, seeded with the
# committed corpora under fuzz/corpus/<target>/. Exits non-zero on the first crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shopt -s nullglob
for fuzzer in build-fuzz/bin/fuzz_*; do
  name=$(basename "$fuzzer")
  corpus=fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  seeds=()
  [[ -d $corpus ]] && seeds+=("$corpus")
  echo "fuzzing $name for ${seconds}s"
  "$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=0 "$work" "${seeds[@]}" 2>&1 | tail -n 2
  rm -rf "$work"
done
