#!/usr/bin/env bash
# Install what is needed, then run the whole city on this machine until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cityheart up "$@"
