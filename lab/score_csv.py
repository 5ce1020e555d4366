"""Score a CSV series with the flow's anomaly detector: the stable command benchmarks call.

    python -m lab.score_csv INPUT.csv OUTPUT.csv

INPUT has a header with columns ``timestamp`` and ``value`` (others are ignored); timestamps are
ISO 8601 (``2014-04-01 00:05:00``, ``2026-11-26T05:00:00Z``; no zone means UTC) or epoch
seconds. OUTPUT gets ``timestamp,value,anomaly_score`` with the input's timestamp and value
text unchanged. Rows are scored in file order by one :class:`~models.anomaly.AnomalyDetector`
with default parameters, exactly as the flow scores one series; the command prints nothing
and exits 0, or prints the problem (naming the line) and exits 2.

:func:`detect` is the same thing as a function, in the form the NAB scorer calls
(``nab_score.py --detector lab.score_csv:detect``). This module is the one place in
``models`` that touches files, and only in :func:`main`; the scoring itself is pure.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

from models.anomaly import AnomalyDetector, DetectorParams

__all__ = ["detect", "main", "parse_time", "score_rows"]


def parse_time(text: str) -> float:
    """Epoch seconds of an ISO 8601 time (naive means UTC) or of a number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def score_rows(
    rows: Iterable[tuple[float, float]], params: DetectorParams | None = None
) -> Iterator[float]:
    """The anomaly score of each (epoch seconds, value) row, in order, by one detector."""
    detector = AnomalyDetector(params)
    for ts, value in rows:
        yield detector.update(ts, value).score


def detect(series: Sequence[tuple[datetime, float]]) -> list[float]:
    """NAB's detector interface: one score in [0, 1] per (datetime, value); naive means UTC."""
    rows = (
        ((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp(), float(value))
        for moment, value in series
    )
    return list(score_rows(rows))


def _read(path: str) -> tuple[list[tuple[str, str]], list[tuple[float, float]]]:
    texts: list[tuple[str, str]] = []
    rows: list[tuple[float, float]] = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"timestamp", "value"} - set(reader.fieldnames or ())
        if missing:
            msg = f"{path}: header {reader.fieldnames} lacks column(s) {sorted(missing)}"
            raise ValueError(msg)
        for line, row in enumerate(reader, start=2):
            try:
                ts, value = parse_time(row["timestamp"]), float(row["value"])
            except (TypeError, ValueError) as exc:
                msg = f"{path}, line {line}: cannot read {row['timestamp']!r},{row['value']!r}"
                raise ValueError(msg) from exc
            if not (math.isfinite(ts) and math.isfinite(value)):
                msg = f"{path}, line {line}: {row['timestamp']!r},{row['value']!r} is not finite"
                raise ValueError(msg)
            rows.append((ts, value))
            texts.append((row["timestamp"], row["value"]))
    return texts, rows


def main(argv: Sequence[str] | None = None) -> int:
    """Score INPUT.csv into OUTPUT.csv; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m lab.score_csv INPUT.csv OUTPUT.csv", file=sys.stderr)
        return 2
    source, target = args
    try:
        texts, rows = _read(source)
        scores = list(score_rows(rows))
    except (OSError, ValueError) as exc:
        print(f"score_csv: {exc}", file=sys.stderr)
        return 2
    with open(target, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for (ts_text, value_text), score in zip(texts, scores, strict=True):
            writer.writerow([ts_text, value_text, repr(score)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
