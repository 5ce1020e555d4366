"""``python -m lab.score_csv IN OUT``: the command benchmarks run, with the flow's detector."""

from __future__ import annotations

import csv
import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lab.score_csv import detect, main, parse_time
from models.anomaly import AnomalyDetector

START = datetime(2014, 4, 1, tzinfo=UTC)


def write_series(path: Path, n: int = 1200) -> list[tuple[datetime, float]]:
    rnd = random.Random(3)
    series = []
    for i in range(n):
        value = 20.0 + 5.0 * math.sin(i / 12.0) + rnd.gauss(0.0, 1.0) + (30.0 if i == 900 else 0.0)
        series.append((START + timedelta(minutes=5 * i), round(value, 3)))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "label"])
        for moment, value in series:
            writer.writerow([moment.strftime("%Y-%m-%d %H:%M:%S"), value, 0])
    return series


def test_the_command_writes_the_detectors_scores_next_to_the_input(tmp_path: Path) -> None:
    series = write_series(tmp_path / "in.csv")
    command = ["-m", "lab.score_csv", str(tmp_path / "in.csv"), str(tmp_path / "out.csv")]
    done = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    with (tmp_path / "out.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert rows[1][:2] == ["2014-04-01 00:00:00", str(series[0][1])]     # input text kept
    scores = [float(row[2]) for row in rows[1:]]
    detector = AnomalyDetector()
    assert scores == [detector.update(m.timestamp(), v).score for m, v in series]
    assert max(range(len(scores)), key=scores.__getitem__) == 900


def test_naive_times_are_utc_and_detect_matches_the_command(tmp_path: Path) -> None:
    series = write_series(tmp_path / "in.csv", n=400)
    naive = [(moment.replace(tzinfo=None), value) for moment, value in series]
    assert detect(naive) == detect(series)
    assert main([str(tmp_path / "in.csv"), str(tmp_path / "out.csv")]) == 0
    with (tmp_path / "out.csv").open(newline="") as handle:
        assert [float(r["anomaly_score"]) for r in csv.DictReader(handle)] == detect(series)
    assert parse_time("2014-04-01 00:05:00") == parse_time("2014-04-01T00:05:00Z") == 1396310700.0
    assert parse_time("1396310700") == 1396310700.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,value\n2014-04-01 00:00:00,1\n", "lacks column(s) ['timestamp']"),
        ("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n", "line 3"),
        ("timestamp,value\n2014-04-01 00:00:00,nan\n", "line 2: '2014-04-01 00:00:00','nan'"),
    ],
)
def test_bad_input_is_reported_with_its_line(tmp_path: Path, capsys, text: str, message: str):
    (tmp_path / "in.csv").write_text(text)
    assert main([str(tmp_path / "in.csv"), str(tmp_path / "out.csv")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
    assert main(["only-one-argument"]) == 2
