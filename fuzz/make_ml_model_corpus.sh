#!/usr/bin/env bash
# Regenerates the seed corpus of fuzz_ml_model: one small model of every registered algorithm,
# fitted by the `ember` CLI on the first rows of each iris class, with the CLI's schema header
# cut off (the fuzzer reads what ml::load_model reads). Usage: fuzz/make_ml_model_corpus.sh [ember]
set -euo pipefail
cd "$(dirname "$0")/.."
ember=${1:-build/bin/ember}
out=fuzz/corpus/ml_model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 10 rows of each class keep every model small.
awk -F, 'NR == 1 || seen[$NF]++ < 10' data/datasets/iris.csv >"$work/train.csv"
# CategoricalNB wants category codes: the same rows with every measurement truncated.
awk -F, -v OFS=, 'NR > 1 { for (i = 1; i < NF; ++i) $i = int($i) } 1' "$work/train.csv" \
  >"$work/codes.csv"
rm -rf "$out" && mkdir -p "$out"
"$ember" ml list | while IFS=$'\t' read -r algo task _; do
  params=()
  train=$work/train.csv
  case $algo in
    RandomForest* | ExtraTrees*) params=(--param n_estimators=3) ;;
    HistGradientBoosting*) params=(--param max_iter=3) ;;
    KMeans) params=(--param n_clusters=3 --param n_init=1) ;;
    KNeighbors*) params=(--param n_neighbors=3) ;;
    CategoricalNB) train=$work/codes.csv ;;
  esac
  target=(--target target)
  [[ $task == regressor ]] && target=(--target petal_width_cm)
  "$ember" ml fit --algo "$algo" "${params[@]}" --train "$train" "${target[@]}" \
    --out "$work/$algo.pipeline" >/dev/null
  # The model is the archive's last string; it starts with the length-prefixed "EMBERML".
  python3 - "$work/$algo.pipeline" "$out/$algo" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
start = data.rindex(b"\x07\x00\x00\x00\x00\x00\x00\x00EMBERML")
open(sys.argv[2], "wb").write(data[start:])
PY
done
ls -l "$out" | awk '{ total += $5 } END { print NR - 1, "seeds,", total, "bytes" }'
