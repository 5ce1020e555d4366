#!/usr/bin/env bash
# Install the Node packages that serve PostgreSQL with PostGIS (PGlite's WASM build) for the
# spatial storage tests: tests/pglite_postgis/node_modules, exactly as pinned in its
# package-lock.json. Safe to run again (does nothing when already installed). Needs node >= 18
# and npm on PATH.
set -euo pipefail
cd "$(dirname "$0")/../tests/pglite_postgis"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup-pglite-postgis: node (>= 18) and npm are needed for the PostGIS storage tests" >&2
  exit 1
fi
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
   && [ -d node_modules/@electric-sql/pglite-postgis ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
