#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite: clang-tidy, release build
# (-Werror), the same tests under AddressSanitizer + UndefinedBehaviorSanitizer, and a bounded
# libFuzzer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch_models.sh >/dev/null  # real model files some tests read (cached)
jobs=$(nproc)
# Each section prints the seconds spent so far, so that a slow CI run shows where its time went.
section() { echo "== [${SECONDS}s] $*"; }

section "format check (clang-format, .clang-format at the root)"
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

section "clang-tidy on the files changed since scripts/tidy-clean-commit (any finding fails)"
cmake -S . -B build-tidy -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
python3 scripts/tidy.py build-tidy -j "$jobs"

section "release build + tests"
bash scripts/build.sh release
release_log=build/release-tests.log
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600 | tee "$release_log"

section "layering (includes follow the CMake link graph)"
bash scripts/check_layering.sh build

section "install + examples against the installed package (CMake and pkg-config)"
bash scripts/check_install.sh build

# Nothing may depend on the machine that made the fixtures (docs/ARCHITECTURE.md): the numeric
# tests run again as another CPU would run them. Every forced value appears in one of three runs
# (a lower Highway target, another OpenBLAS kernel family, 1 or 2 threads); the slow accuracy
# suites (forests, HGB) and the CLI and CSV tests, which add no other arithmetic, are left out,
# and so is the 7639-token perplexity on the scalar target (150 s there: it still runs on this
# CPU's target, AVX2 and SSE4). A run whose instructions this CPU lacks (Haswell kernels need
# AVX2) is skipped.
section "numeric tests on forced arithmetic paths"
numeric_labels='^(core_tests|ml_tests|models_tests|tokenizers_conformance_test)$'
slow_or_plumbing='^(HgbAccuracy|ForestAccuracy|MlCli|Csv|TableSchema)\.'
forced_log=build/forced-paths.log
while read -r needs also_skip forced; do
  if ! grep -qw "$needs" /proc/cpuinfo; then
    echo "-- skipped (no $needs on this CPU): $forced"
    continue
  fi
  echo "-- $forced"
  skip=$slow_or_plumbing
  [[ $also_skip == - ]] || skip="$skip|$also_skip"
  # shellcheck disable=SC2086  # $forced is a list of NAME=VALUE words
  env $forced ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600 \
    -L "$numeric_labels" -E "$skip" >"$forced_log" || { cat "$forced_log"; exit 1; }
  grep -E "tests passed|Total Test time" "$forced_log"
done <<'EOF'
avx2 - EMBER_SIMD=AVX2 OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 EMBER_NUM_THREADS=1
avx - EMBER_SIMD=SSE4 OPENBLAS_CORETYPE=Sandybridge OPENBLAS_NUM_THREADS=2 EMBER_NUM_THREADS=2
avx ^SmolLM2LlamaCpp\.Perplexity EMBER_SIMD=scalar OPENBLAS_CORETYPE=Sandybridge OPENBLAS_NUM_THREADS=1 EMBER_NUM_THREADS=2
EOF

# The sanitizers watch the code, not the weights: the tests that run real 100-500 MB models
# (greedy generation, agreement with llama.cpp, KeyBERT, MiniLM) take 8 minutes of CPU under
# them and drive the same loaders, kernels and generation loops as the tiny random models'
# tests, which do run here.
section "AddressSanitizer + UBSan build + tests"
bash scripts/build.sh asan
real_models='^(Keywords\.MatchesKeyBert|QuantizeSmolLM2\.Made|SmolLM2LlamaCpp\.|SmolLM2Gguf\.DequantizedGreedy|SmolLM2\.Greedy|Models\.AllMiniLm)'
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900 -E "$real_models"

# 20 s a target from the committed corpora puts every parser under the fuzzer in each run;
# longer campaigns are run by hand (scripts/fuzz.sh SECONDS).
section "fuzzing (bounded)"
bash scripts/build.sh fuzz
bash scripts/fuzz.sh "${EMBER_FUZZ_SECONDS:-20}"

section "done"
# The closing line that counts: CTest's summary from the release run, repeated last.
grep -E "tests passed|Total Test time" "$release_log"
