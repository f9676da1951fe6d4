#!/usr/bin/env bash
# Create .venv and install diffops with its test extras. Idempotent: a second run is quick.
# torch and torchvision are installed first and alone, pinned to the pair this machine has on disk
# (torchvision is needed by torch-fidelity's Inception-v3); on a GPU machine install the torch and
# torchvision builds you want into .venv before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -c "import torch, torchvision" 2>/dev/null || .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -q -e ".[test]"
.venv/bin/diffops --version
