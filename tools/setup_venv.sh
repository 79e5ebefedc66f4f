#!/usr/bin/env bash
# Creates tools/.venv with the pinned reference implementations (tools/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements.txt
