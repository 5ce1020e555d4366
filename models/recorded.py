"""Recorded data files as reading payloads: a CSV's columns mapped onto readings, and what is not.

    layout = CsvLayout(time_column="timestamp", values=(ValueColumn("value", "traffic_speed",
                       "mph"),), device="det-4013", district="harbour",
                       time_format="%Y-%m-%d %H:%M:%S", missing=frozenset({"-200"}))
    for row in csv_records(layout, lines):     # lines: the file's text lines, header first
        row.line, row.payload                  # the reading's JSON object (bytes), or
        row.line, row.error                    # an InvalidReading (bad_row, bad_timestamp, ...)

Each value column of a row becomes one reading of its kind (in the column's unit, or the row's
``unit_column``; the parser converts it as for live data). The device is ``device`` or the
row's ``device_column``, the district ``district`` or the row's ``district_column``. A value
cell holding one of the file's ``missing`` markers, or empty, is ``missing_value``; a row with
too few or too many cells is ``bad_row``; a time that does not parse is ``bad_timestamp``.
Times without a zone are read in ``timezone``. :class:`SeriesCheck` then finds repeated
timestamps (``duplicate``: the first one wins) and gaps. Pure: the caller reads the file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from statistics import median

import orjson

from models.errors import InvalidReading

__all__ = ["CsvLayout", "FileRow", "SeriesCheck", "ValueColumn", "csv_records", "value_column"]


@dataclass(frozen=True, slots=True)
class ValueColumn:
    """A column of values of ``kind``, in ``unit`` (None: the row's unit column, or the
    kind's canonical unit)."""

    column: str
    kind: str
    unit: str | None = None


def value_column(spec: str) -> ValueColumn:
    """``COLUMN=KIND[:UNIT]`` as a ValueColumn; ValueError naming the spec if malformed."""
    column, sep, rest = spec.partition("=")
    kind, _, unit = rest.partition(":")
    if not sep or not column.strip() or not kind.strip():
        msg = f"value column {spec!r} is not COLUMN=KIND[:UNIT]"
        raise ValueError(msg)
    return ValueColumn(column.strip(), kind.strip(), unit.strip() or None)


@dataclass(frozen=True)
class CsvLayout:
    """How a CSV's columns make readings (see the module doc)."""

    time_column: str
    values: tuple[ValueColumn, ...]
    device: str | None = None
    device_column: str | None = None
    district: str | None = None
    district_column: str | None = None
    unit_column: str | None = None
    time_format: str | None = None
    timezone: tzinfo = UTC
    missing: frozenset[str] = frozenset()
    default_units: dict[str, str] = field(default_factory=dict)  # kind -> canonical unit

    def columns(self) -> list[str]:
        """The columns this layout reads."""
        named = [self.time_column, *(v.column for v in self.values), self.device_column,
                 self.district_column, self.unit_column]
        return [name for name in named if name]


@dataclass(frozen=True, slots=True)
class FileRow:
    """One reading of a file (its JSON payload) or why a cell or row is not one."""

    line: int
    payload: bytes
    error: InvalidReading | None = None


def _time(text: str, layout: CsvLayout, raw: bytes) -> float:
    try:
        if layout.time_format:
            moment = datetime.strptime(text, layout.time_format)  # noqa: DTZ007 (zone below)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        how = f"--time-format {layout.time_format!r}" if layout.time_format else "ISO 8601"
        detail = f"time {text!r} is not {how}"
        raise InvalidReading(raw, "bad_timestamp", detail) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=layout.timezone)
    return moment.timestamp()


def csv_records(layout: CsvLayout, lines: Iterable[str]) -> Iterator[FileRow]:
    """The readings of a CSV's lines (header first) under ``layout``, in file order.

    ValueError if the header lacks a column the layout names (nothing can be read then).
    """
    source = iter(lines)
    reader = csv.reader(source)
    header = [name.strip() for name in next(reader, [])]
    missing_columns = [name for name in layout.columns() if name not in header]
    if missing_columns:
        msg = f"the file's header {header} has no column {missing_columns[0]!r}"
        raise ValueError(msg)
    at = {name: header.index(name) for name in layout.columns()}
    for row in reader:
        line = reader.line_num
        raw = ",".join(row).encode()
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            detail = f"line {line} has {len(row)} cells, the header {len(header)}"
            yield FileRow(line, raw, InvalidReading(raw, "bad_row", detail))
            continue
        try:
            ts = _time(row[at[layout.time_column]].strip(), layout, raw)
        except InvalidReading as exc:
            yield FileRow(line, raw, exc)
            continue
        device = row[at[layout.device_column]].strip() if layout.device_column else layout.device
        district = (row[at[layout.district_column]].strip() if layout.district_column
                    else layout.district)
        row_unit = row[at[layout.unit_column]].strip() if layout.unit_column else None
        for value in layout.values:
            yield _reading(layout, value, row[at[value.column]].strip(), line, raw,
                           device=device, district=district, ts=ts, row_unit=row_unit)


def _reading(layout: CsvLayout, value: ValueColumn, cell: str, line: int, raw: bytes, *,
             device: str | None, district: str | None, ts: float,
             row_unit: str | None) -> FileRow:
    if not cell or cell in layout.missing:
        detail = f"{value.column} on line {line} is {cell!r}, a missing value"
        return FileRow(line, raw, InvalidReading(raw, "missing_value", detail))
    try:
        number: object = float(cell)
    except ValueError:
        number = cell  # the parser names it (wrong_type)
    unit = row_unit or value.unit or layout.default_units.get(value.kind, "")
    record = {"device_id": device, "district": district, "kind": value.kind, "value": number,
              "unit": unit, "ts": ts}
    return FileRow(line, orjson.dumps(record))


@dataclass
class SeriesCheck:
    """Repeated timestamps and gaps in each (device, kind) series of a file."""

    gap_factor: float = 3.0
    """A step over this many times the series' median step is a gap."""
    _seen: set[tuple[str, str, float]] = field(default_factory=set)
    _times: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def repeated(self, device: str, kind: str, ts: float) -> bool:
        """Whether (device, kind, ts) came before (else it is remembered now)."""
        key = (device, kind, ts)
        if key in self._seen:
            return True
        self._seen.add(key)
        self._times.setdefault((device, kind), []).append(ts)
        return False

    def gaps(self) -> tuple[int, float]:
        """(how many gaps, the longest in seconds) over every series."""
        count, longest = 0, 0.0
        for times in self._times.values():
            if len(times) < 3:
                continue
            times.sort()
            steps = [b - a for a, b in zip(times, times[1:], strict=False)]
            usual = median(steps)
            for step in steps:
                if usual > 0 and step > self.gap_factor * usual:
                    count += 1
                    longest = max(longest, step)
        return count, longest
