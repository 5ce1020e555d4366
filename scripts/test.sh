#!/usr/bin/env bash
# Install everything the tests need, then run them: the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# TimescaleDB (PGlite's WASM build, served by Node) for the storage tests
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
bash scripts/setup-pglite.sh
# the type check first (15-30 s cold, under 1 s cached): a type error stops the run before pytest
if ! .venv/bin/mypy; then
  echo "scripts/test.sh: mypy found type errors (above); fix them, then run the tests again" >&2
  exit 1
fi
exec .venv/bin/python -m pytest "$@"
