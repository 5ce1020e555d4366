"""``cityheart bench --devices``: its options, how it reads a process's memory, and the anomaly
state it measures per series (no servers: the stack runs are in BENCHMARKS.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityheart.cli import app
from lab.bench_memory import process_memory, series_state
from lab.cli import device_counts
from settings.loader import load

ROOT = Path(__file__).resolve().parents[2]


def test_device_counts_are_the_fleet_sizes_in_order() -> None:
    assert device_counts("10000,100000") == [10_000, 100_000]
    assert device_counts(" 10_000 , 100_000 ,") == [10_000, 100_000]


@pytest.mark.parametrize(
    ("given", "named"),
    [("0", "'0'"), ("ten", "'ten'"), ("-5", "'-5'"), ("2.5", "'2.5'"), (",", "names no"),
     ("100000,10000", "increasing order"), ("10,10", "increasing order")],
)
def test_the_memory_bench_refuses_what_is_not_a_fleet_size(given: str, named: str) -> None:
    result = CliRunner().invoke(
        app, ["bench", "--devices", given, "--config", str(ROOT / "config.yaml")])
    assert result.exit_code == 2, result.output
    assert "--devices" in result.output
    assert named in " ".join(result.output.split()).replace("│", "")


@pytest.mark.parametrize("option", ["--device-rate", "--reports"])
def test_the_memory_bench_refuses_a_rate_or_report_count_below_one(option: str) -> None:
    result = CliRunner().invoke(app, ["bench", "--devices", "1000", option, "0",
                                      "--config", str(ROOT / "config.yaml")])
    assert result.exit_code == 2, result.output
    assert option in result.output


def test_process_memory_sums_a_process_and_its_children() -> None:
    alone = process_memory(os.getpid())
    assert alone["processes"] >= 1
    assert 0 < alone["rss_kb"] <= alone["peak_kb"]
    assert 0 < alone["pss_kb"]
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        with_child = process_memory(os.getpid())
        assert with_child["processes"] == alone["processes"] + 1
        assert with_child["rss_kb"] > alone["rss_kb"]
    finally:
        child.communicate(b"")
    assert process_memory(child.pid)["rss_kb"] == 0, "a process that is gone weighs nothing"


def test_series_state_counts_each_device_series_and_the_district_one() -> None:
    state = series_state(load(ROOT / "config.yaml"), 200, points=2)
    assert (state.series, state.points) == (201, 2)  # 200 devices' series + the district's
    # a detector held pickled between points weighs less than one in use; a warm one more
    assert 0 < state.held_bytes_per_series < state.live_bytes_per_series
    assert state.snapshot_bytes_per_series < state.warm["pickled_bytes"]
    assert state.warm["pickled_bytes"] < state.warm["live_bytes"]
