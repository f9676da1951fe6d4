#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit tests + end-to-end pipeline test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 MLFLOW_ENABLE_ASYNC_LOGGING=false
exec .venv/bin/python -m pytest "$@"
