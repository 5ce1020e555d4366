#!/usr/bin/env bash
# Score cityheart's anomaly detector (lab.score_csv:detect, the code the flow runs) with the
# Numenta Anomaly Benchmark scorer. The NAB data is never copied into this repo: point
# CITYHEART_NAB_DIR at a folder holding nab_score.py and data/ (default: ../shared/nab next to
# the repo). Extra arguments go to nab_score.py, for example --jobs 2 or --per-file.
#   bash scripts/nab_score.sh --jobs 2
set -euo pipefail
cd "$(dirname "$0")/.."
nab="${CITYHEART_NAB_DIR:-../shared/nab}"
if [ -n "${PYTHON:-}" ]; then python="$PYTHON"
elif [ -x .venv/bin/python ]; then python=.venv/bin/python
else python=python3
fi
if [ ! -f "$nab/nab_score.py" ]; then
  echo "nab_score.sh: no nab_score.py in $nab (set CITYHEART_NAB_DIR)" >&2
  exit 2
fi
exec "$python" "$nab/nab_score.py" --detector lab.score_csv:detect \
  --data-dir "$nab/data" --windows "$nab/data/labels/combined_windows.json" "$@"
