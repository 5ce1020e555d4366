"""``cityheart import FILE``: recorded data in, as history (backfill) or replayed as live.

    report = read_file(settings, Path("day.csv"), "csv", layout=layout, now=time.time())
    backfill(settings, report)       # readings into history, then `cityheart replay` of the range
    play_as_live(settings, report, speed=60)   # shifted to now, through Kafka like live data

Every record goes through the parser live readings go through (unit conversion, ranges,
districts); a file's rows that are not readings are counted per reason (``missing_value``,
``bad_row``, ``bad_timestamp``, ``duplicate`` for a repeated (device, kind, time), and the
parser's reasons) with the first lines of each. Formats: ``csv`` (:mod:`models.recorded`),
``jsonl`` (one reading object a line, as devices send them, with ``district``) and ``senml``
(a SenML pack, :mod:`models.senml`; the line named is the record's index + 1).

Backfill writes the readings to PostgreSQL (keyed by device, kind and time: importing a file
twice stores nothing twice), then re-runs the indicator and alert logic over the file's range
exactly as ``cityheart replay`` does (alerts are never duplicated). As live, the readings are
produced to the readings topic in their order, each stamped with the wall time it is sent at,
``speed`` times faster than recorded (60: an hour a minute), so the flow, the feed and the
dashboard see them as they would a live day.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from cityheart.replay import run_replay
from connectors.kafka import ReliableProducer, create_topics
from connectors.readings_out import ReadingsOut
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.storage.rows import reading_row
from models.errors import ConfigError, InvalidReading
from models.readings import Reading, encode
from models.recorded import CsvLayout, FileRow, SeriesCheck, csv_records
from models.senml import PackParser
from models.timefmt import iso
from settings.config import Settings
from settings.params import reading_parser

__all__ = ["FORMATS", "ImportReport", "backfill", "play_as_live", "read_file"]

log = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl", "senml")
_EXAMPLES = 3  # lines named per reason


@dataclass
class ImportReport:
    """A file's readings and what was not imported, per reason."""

    path: Path
    readings: list[Reading] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    gaps: int = 0
    longest_gap_s: float = 0.0
    read_s: float = 0.0

    def refuse(self, line: int, error: InvalidReading) -> None:
        """Count a record refused on ``line``."""
        self.refused[error.reason] += 1
        shown = self.examples.setdefault(error.reason, [])
        if len(shown) < _EXAMPLES:
            shown.append(f"line {line}: {error.detail}")

    def lines(self) -> list[str]:
        """What to tell the person who ran the import."""
        out = [f"read {len(self.readings)} readings from {self.path.name} in "
               f"{self.read_s:.2f} s ({self.rate():,.0f} rows/s)"]
        if self.readings:
            first = min(r.ts for r in self.readings)
            last = max(r.ts for r in self.readings)
            out.append(f"time range: {iso(first)} .. {iso(last)}")
        for reason, count in sorted(self.refused.items(), key=lambda kv: -kv[1]):
            out.append(f"not imported: {count} {reason}")
            out += [f"  {example}" for example in self.examples.get(reason, [])]
        if self.gaps:
            out.append(f"gaps: {self.gaps} (longest {self.longest_gap_s / 60:.0f} min); "
                       "nothing is made up for them")
        return out

    def rate(self) -> float:
        """Records read a second."""
        total = len(self.readings) + sum(self.refused.values())
        return total / self.read_s if self.read_s > 0 else 0.0


def _file_rows(settings: Settings, path: Path, fmt: str, layout: CsvLayout | None,
               now: float) -> Iterator[FileRow]:
    if fmt == "csv":
        if layout is None:
            raise ConfigError("cityheart import", "--time/--value", "a CSV needs its layout")
        with path.open(encoding="utf-8-sig", newline="") as file:
            try:
                yield from csv_records(layout, file)
            except ValueError as exc:
                raise ConfigError("cityheart import", str(path), str(exc)) from None
    elif fmt == "jsonl":
        with path.open("rb") as file:
            for number, line in enumerate(file, 1):
                if line.strip():
                    yield FileRow(number, line.strip())
    elif fmt == "senml":
        yield from _senml_rows(settings, path, now)
    else:
        reason = f"format {fmt!r} is not one of {list(FORMATS)}"
        raise ConfigError("cityheart import", "--format", reason)


def _senml_rows(settings: Settings, path: Path, now: float) -> Iterator[FileRow]:
    """A SenML pack file's readings (as canonical JSON) and refused records, by index + 1."""
    packs = PackParser(reading_parser(settings), max_pack_bytes=max(path.stat().st_size, 1))
    try:
        result = packs.parse(path.read_bytes(), now)
    except InvalidReading as exc:
        raise ConfigError("cityheart import", str(path), str(exc)) from None
    rows = [FileRow(index + 1, encode(reading)) for index, reading in result.readings]
    rows += [FileRow(r.index + 1, r.error.payload, r.error) for r in result.refused]
    yield from sorted(rows, key=lambda row: row.line)


def read_file(settings: Settings, path: Path, fmt: str, *, layout: CsvLayout | None = None,
              now: float) -> ImportReport:
    """Every reading of the file at ``path``, and what was refused per reason."""
    if not path.is_file():
        raise ConfigError("cityheart import", "FILE", f"{str(path)!r} is not a file")
    parser = reading_parser(settings)
    report = ImportReport(path)
    series = SeriesCheck()
    started = time.perf_counter()
    for row in _file_rows(settings, path, fmt, layout, now):
        if row.error is not None:
            report.refuse(row.line, row.error)
            continue
        try:
            reading = parser.parse(row.payload, None, now)
        except InvalidReading as exc:
            report.refuse(row.line, exc)
            continue
        if series.repeated(reading.device_id, reading.kind, reading.ts):
            detail = f"{reading.device_id} {reading.kind} at {iso(reading.ts)} came before"
            report.refuse(row.line, InvalidReading(row.payload, "duplicate", detail))
            continue
        report.readings.append(reading)
    report.read_s = time.perf_counter() - started
    report.gaps, report.longest_gap_s = series.gaps()
    return report


def _chunks(items: list[Reading], size: int) -> Iterable[list[Reading]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def backfill(settings: Settings, report: ImportReport, *, now: float) -> int:
    """Store the readings, then replay their range; the number of readings newly stored."""
    if not report.readings:
        return 0
    options = StorageOptions.from_database(settings.database)
    stored = 0
    started = time.perf_counter()
    with Storage.open(options) as storage:
        writer = storage.writer("readings")
        for chunk in _chunks(report.readings, 10_000):
            stored += writer.write([reading_row(r) for r in chunk])
    took = time.perf_counter() - started
    print(f"stored {stored} new readings ({len(report.readings) - stored} were stored "
          f"already) in {took:.2f} s ({len(report.readings) / max(took, 1e-9):,.0f} rows/s)",
          flush=True)
    first = min(r.ts for r in report.readings)
    last = max(r.ts for r in report.readings) + settings.flow.window_s
    districts = sorted({r.district for r in report.readings})
    kinds = sorted({r.kind for r in report.readings})
    run_replay(settings, since=iso(first), until=iso(last), districts=districts, kinds=kinds,
               now=now)
    return stored


def play_as_live(settings: Settings, report: ImportReport, *, speed: float) -> int:
    """Produce the readings as live ones, ``speed`` times faster than recorded; the count."""
    if speed <= 0:
        raise ConfigError("cityheart import", "--speed", f"{speed!r} must be above 0")
    readings = sorted(report.readings, key=lambda r: r.ts)
    if not readings:
        return 0
    topics = settings.kafka.topics
    create_topics(settings.kafka.bootstrap, [topics.readings, topics.dead_letter,
                                             topics.rejected], settings.kafka.partitions)
    out = ReadingsOut(ReliableProducer(settings.kafka.bootstrap, linger_ms=20), topics)
    first, start = readings[0].ts, time.time()
    span = (readings[-1].ts - first) / speed
    print(f"playing {len(readings)} readings as live over {span:,.0f} s (x{speed:g})",
          flush=True)
    for reading in readings:
        due = start + (reading.ts - first) / speed
        while (wait := due - time.time()) > 0:   # the replay's pace (serving deliveries)
            out.producer.poll(min(wait, 1.0))
        out.reading(replace(reading, ts=due))
    out.producer.flush(60)
    return len(readings)
