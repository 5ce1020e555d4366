"""`cityheart bench --json` runs the whole pipeline and ends with machine-readable results.

No speed is asserted here (numbers belong in BENCHMARKS.md); this checks the command works and
reports what scripts compare.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from tests.support import shipped_config

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def test_bench_json_reports_rate_and_latencies(tmp_path: Path) -> None:
    config = shipped_config()
    config["flow"]["window_s"] = 2  # several whole windows in a short step
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "cityheart", "bench", "--json", "--rates", "300",
         "--pack-rates", "600", "--gateways", "3", "--pack-size", "20",
         "--ceiling-messages", "3000", "--step-seconds", "8", "--config", str(path)],
        capture_output=True, text=True, timeout=200, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
    (step, packs), summary = [line["step"] for line in lines[:-1]], lines[-1]
    assert (step["offered_per_s"], step["workload"]) == (300, "readings")
    assert (packs["offered_per_s"], packs["workload"]) == (600, "packs")
    for result in (step, packs):
        assert result["accepted_per_s"] > 0, "readings made it through to vital signs"
        assert result["alerts_timed"] > 0, "the bench scenario's alerts reached the feed"
    for key in ("sustained_readings_per_s", "publish_to_vital_p99_ms", "publish_to_alert_p99_ms"):
        assert key in summary
        assert key in summary["packs"], "the SenML workload's figures, under packs"
    assert summary["paho_ceiling_msgs_per_s"] > 0, "the raw paho ceiling, measured in the run"
