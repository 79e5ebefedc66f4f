#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite: release build (-Werror), the same
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, and a bounded libFuzzer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch_models.sh >/dev/null  # real model files some tests read (cached)
jobs=$(nproc)

echo "== format check (clang-format, .clang-format at the root)"
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

echo "== release build + tests"
bash scripts/build.sh release
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600

echo "== AddressSanitizer + UBSan build + tests"
bash scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900

echo "== fuzzing (bounded)"
bash scripts/build.sh fuzz
bash scripts/fuzz.sh "${EMBER_FUZZ_SECONDS:-60}"

# The closing line that counts: CTest's summary from the release run, repeated last.
ctest --test-dir build -j "$jobs" --timeout 600 | tail -n 3
