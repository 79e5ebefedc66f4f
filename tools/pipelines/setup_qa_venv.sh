#!/usr/bin/env bash
# Creates the venv of tools/pipelines/make_qa_fixtures.py: transformers 5.2.0, the last release
# with the question-answering pipeline, beside the pinned tokenizers of tools/requirements.txt.
# It is its own venv (default tools/.venv-qa, git-ignored) because tools/.venv pins a later
# transformers. torch is the same pin as tools/.venv's; when tools/.venv exists its site-packages
# are appended to this venv's path (after this venv's own), so pip finds torch there instead of
# downloading it again, while transformers and whatever else 5.2.0 pins resolve here first.
# Usage: tools/pipelines/setup_qa_venv.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-qa}
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [[ -x .venv/bin/python ]]; then
  .venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    >"$site/zz_tools_venv.pth"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q torch==2.15.0 transformers==5.2.0 tokenizers==0.22.2 \
  huggingface_hub==1.33.0 numpy==2.3.5 safetensors==0.8.0
