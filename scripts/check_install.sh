#!/usr/bin/env bash
# Installs the release build into a temporary prefix and builds and runs examples/ against it,
# once with CMake (find_package(Ember)) and once with pkg-config, checking their output.
#   scripts/check_install.sh [BUILD_DIR]   (default build/, already built)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

# Expected output, from the committed reference fixtures: token ids of the roberta case's inputs
# (one line each, with special tokens) and the labels of the example's test rows.
case_dir=tests/fixtures/tokenizers/cases/bpe_roberta
python3 - "$case_dir/expected.jsonl" "$work/text.txt" "$work/ids.txt" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
picked = [l for l in lines if l.get("add_special_tokens") and isinstance(l.get("input"), str)
          and "\n" not in l["input"] and "\r" not in l["input"] and l["input"]][:20]
assert len(picked) >= 5, "too few single-line inputs in the case"
with open(sys.argv[2], "w", encoding="utf-8", newline="\n") as t, open(sys.argv[3], "w") as i:
    for l in picked:
        t.write(l["input"] + "\n")
        i.write(" ".join(map(str, l["ids"])) + "\n")
PY
printf 'low\nhigh\nlow\nhigh\n' >"$work/labels.txt"

check() {  # how example
  local how=$1 example=$2 bin=$3
  if [[ $example == tokenize_file ]]; then
    "$bin" "$case_dir/tokenizer.json" "$work/text.txt" >"$work/out.txt"
    diff -u "$work/ids.txt" "$work/out.txt"
  else
    "$bin" LogisticRegression examples/ml_fit_predict/train.csv label \
      examples/ml_fit_predict/test.csv >"$work/out.txt"
    diff -u "$work/labels.txt" "$work/out.txt"
  fi
  echo "-- $example ($how): ok"
}

for example in tokenize_file ml_fit_predict; do
  cmake -S "examples/$example" -B "$work/cmake-$example" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$work/cmake-$example" >/dev/null
  check cmake "$example" "$work/cmake-$example/$example"

  mkdir -p "$work/make-$example"
  PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -s -C "$work/make-$example" \
    -f "$PWD/examples/$example/Makefile" VPATH="$PWD/examples/$example" >/dev/null
  check pkg-config "$example" "$work/make-$example/$example"
done
"$prefix/bin/ember" --version >/dev/null && echo "-- installed ember CLI runs"
