#!/usr/bin/env bash
# Writes tests/fixtures/ml/pipeline/: model files in `ember ml` pipeline format version 1, as the
# CLI saved them before the format moved into the library (commit a7432fc), with that CLI's
# predictions, so that later versions prove they still read those files.
#   tools/ml/pipeline_v1_fixtures.sh PATH/TO/OLD/ember
set -euo pipefail
ember=${1:?usage: $0 PATH/TO/ember built from commit a7432fc}
dir="$(cd "$(dirname "$0")/../.." && pwd)/tests/fixtures/ml/pipeline"
mkdir -p "$dir"
# Numeric and text features, text labels: covers the one-hot encoding and the class labels.
cat >"$dir/train.csv" <<'CSV'
colour,size,weight,label
red,1.5,10,apple
blue,2.25,12,plum
red,3,11,apple
green,4,30,pear
red,5.5,9,apple
blue,6,14,plum
green,7,28,pear
green,8.5,31,pear
blue,9,13,plum
red,2,10.5,apple
CSV
# Rows in another column order and without the target, as predict accepts them.
cat >"$dir/query.csv" <<'CSV'
weight,size,colour
10,1,red
29,7.5,green
13,5,blue
20,4,red
CSV
"$ember" ml fit --algo LogisticRegression --param C=0.05 --train "$dir/train.csv" --target label \
  --out "$dir/logistic.v1.model" >/dev/null
"$ember" ml predict --proba --model "$dir/logistic.v1.model" --data "$dir/query.csv" \
  >"$dir/logistic.v1.predict.csv"
"$ember" ml fit --algo Ridge --param alpha=0.5 --train "$dir/train.csv" --target weight \
  --out "$dir/ridge.v1.model" >/dev/null
# Ridge's target is weight, so the query's weight column is ignored and label is a feature.
printf 'label,colour,size\napple,red,1\npear,green,7.5\nplum,blue,5\n' >"$dir/ridge_query.csv"
"$ember" ml predict --model "$dir/ridge.v1.model" --data "$dir/ridge_query.csv" \
  >"$dir/ridge.v1.predict.csv"
"$ember" ml fit --algo StandardScaler --train "$dir/train.csv" --target label \
  --out "$dir/standard_scaler.v1.model" >/dev/null
"$ember" ml predict --model "$dir/standard_scaler.v1.model" --data "$dir/query.csv" \
  >"$dir/standard_scaler.v1.predict.csv"
