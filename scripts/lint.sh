#!/usr/bin/env bash
# clang-format check of every C++ file, and clang-tidy on the files changed against a base
# revision (default: HEAD~1), using build/compile_commands.json.
#   scripts/lint.sh [--fix] [BASE]
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
if [[ ${1:-} == --fix ]]; then fix=1; shift; fi
base=${1:-HEAD~1}
mapfile -t all < <(git ls-files '*.cpp' '*.hpp' '*.h')
if ((fix)); then
  clang-format -i "${all[@]}"
else
  clang-format --dry-run --Werror "${all[@]}"
fi
mapfile -t changed < <(git diff --name-only --diff-filter=AM "$base" -- '*.cpp' | grep -v '^fuzz/' || true)
if ((${#changed[@]})) && [[ -f build/compile_commands.json ]]; then
  clang-tidy -p build --quiet "${changed[@]}"
fi
