#!/usr/bin/env bash
# Create .venv and install diffops with its test extras. Idempotent: a second run is quick.
# torch is installed first and alone, pinned to the CPU wheel this machine has on disk;
# on a GPU machine install the torch build you want into .venv before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test]"
.venv/bin/diffops --version
