#!/usr/bin/env bash
# Install everything the tests need, then run them: the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
