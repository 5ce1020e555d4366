"""The ``readings`` topic's record: a batch of readings, columnar, with a format version.

    value = ReadingBatch.of(readings).encode()     # the bytes of one Kafka record
    batch = decode_batch(value)                    # a ReadingBatch, or None: a single reading
    batch.readings()                               # the Reading objects again, in order
    readings_in(value)                             # a batch's readings, or a single reading's

The bridge packs the readings it accepted within a few milliseconds into one record per
partition; every consumer of the topic reads them with this module. The encoding (format 1) is
one JSON object whose columns are as long as the batch::

    {"v": 1,
     "series": [["harbour", "pm25", "ug/m3"], ["old-town", "noise", "dBA"]],
     "series_ix": [0, 0, 1],                     # index into "series", per reading
     "device_id": ["pm-1", "pm-2", "nz-7"],
     "value": [17.2, 9.5, 61.0],                 # in the unit of the reading's series
     "ts": [1795669200.125, 1795669200.5, 1795669201.0],   # UTC epoch seconds
     "seq": [42, null, 7],                       # optional: absent when no reading has one
     "lat": [37.7793, null, 37.7601],            # optional, with "lon": a reading's own
     "lon": [-122.4193, null, -122.4011]}        # position (WGS84), absent when none has one

``series`` is the batch's dictionary of (district, kind, unit): a batch holds few of them, so
each reading costs one small integer for the three. A district may be ``""``: a reading whose
device named none (``models.readings.UNPLACED``), which the flow places by its position.
Floats are written by orjson in their shortest exact form, so a reading decodes to exactly the
Reading that was encoded.

``v`` is the format. A reader refuses a record of another format with
:class:`~models.errors.InvalidReading` reason ``unknown_format`` (the flow dead-letters it with
that reason), and a batch whose columns do not fit together with reason ``bad_batch``. A JSON
object without ``v`` is a single reading, as bridges before batches wrote
(:func:`models.readings.encode`): readers still take those, so a topic written before the
upgrade is read as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from models.errors import InvalidReading
from models.readings import Reading

__all__ = ["FORMAT", "FORMATS", "ReadingBatch", "decode_batch", "readings_in"]

FORMAT = 1
"""The format :meth:`ReadingBatch.encode` writes."""
FORMATS = (1,)
"""The formats this module reads."""

Series = tuple[str, str, str]
"""(district, kind, unit) of some readings."""


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings in columns: ``series[series_ix[i]]`` is reading i's (district, kind, unit)."""

    series: tuple[Series, ...]
    series_ix: Sequence[int]
    device_ids: Sequence[str]
    values: Sequence[float]
    ts: Sequence[float]
    seqs: Sequence[int | None] | None = None
    """None when no reading has a seq."""
    lats: Sequence[float | None] | None = None
    """Each reading's own latitude (with :attr:`lons`); None when no reading has a position."""
    lons: Sequence[float | None] | None = None

    @classmethod
    def of(cls, readings: Iterable[Reading]) -> ReadingBatch:
        """The batch of ``readings``, in their order."""
        index: dict[Series, int] = {}
        series_ix: list[int] = []
        device_ids: list[str] = []
        values: list[float] = []
        ts: list[float] = []
        seqs: list[int | None] = []
        lats: list[float | None] = []
        lons: list[float | None] = []
        for reading in readings:
            key = (reading.district, reading.kind, reading.unit)
            ix = index.get(key)
            if ix is None:
                ix = index[key] = len(index)
            series_ix.append(ix)
            device_ids.append(reading.device_id)
            values.append(reading.value)
            ts.append(reading.ts)
            seqs.append(reading.seq)
            lats.append(reading.lat)
            lons.append(reading.lon)
        has_seq = any(seq is not None for seq in seqs)
        placed = any(lat is not None for lat in lats)
        return cls(tuple(index), series_ix, device_ids, values, ts, seqs if has_seq else None,
                   lats if placed else None, lons if placed else None)

    def __len__(self) -> int:
        return len(self.device_ids)

    def reading(self, i: int) -> Reading:
        """Reading ``i`` of the batch."""
        district, kind, unit = self.series[self.series_ix[i]]
        seq = None if self.seqs is None else self.seqs[i]
        lat = None if self.lats is None else self.lats[i]
        lon = None if self.lons is None else self.lons[i]
        return Reading(self.device_ids[i], district, kind, self.values[i], unit, self.ts[i], seq,
                       lat, lon)

    def readings(self) -> list[Reading]:
        """Every reading of the batch, in order."""
        if self.lats is not None:
            return [self.reading(i) for i in range(len(self))]
        series = self.series
        seqs = self.seqs if self.seqs is not None else [None] * len(self.device_ids)
        out = []
        for ix, device_id, value, ts, seq in zip(
            self.series_ix, self.device_ids, self.values, self.ts, seqs, strict=True
        ):
            district, kind, unit = series[ix]
            out.append(Reading(device_id, district, kind, value, unit, ts, seq))
        return out

    def encode(self) -> bytes:
        """The batch's record value (format :data:`FORMAT`, see the module doc)."""
        record: dict[str, Any] = {
            "v": FORMAT,
            "series": self.series,
            "series_ix": self.series_ix,
            "device_id": self.device_ids,
            "value": self.values,
            "ts": self.ts,
        }
        if self.seqs is not None:
            record["seq"] = self.seqs
        if self.lats is not None:
            record["lat"], record["lon"] = self.lats, self.lons
        return orjson.dumps(record)


def decode_batch(payload: bytes) -> ReadingBatch | None:
    """The batch in a ``readings`` record, or None when the record is not a batch (a single
    reading's JSON, for :class:`~models.readings.ReadingParser`).

    Raises InvalidReading: ``unknown_format`` for a batch of another format, ``bad_batch``
    when its columns do not fit together. A payload that is not JSON is not a batch (None).
    """
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None  # not a batch: the parser says what it is (invalid JSON, NaN, ...)
    if type(record) is not dict or "v" not in record:
        return None
    version = record["v"]
    if version not in FORMATS or type(version) is not int:
        detail = f"readings record format v={version!r} is not one of {list(FORMATS)}"
        raise InvalidReading(payload, "unknown_format", detail)
    return _columns(record, payload)


def _columns(record: dict[str, Any], payload: bytes) -> ReadingBatch:
    series = record.get("series")
    if type(series) is not list or not all(
        type(s) is list and len(s) == 3 and all(type(x) is str for x in s) and s[1] and s[2]
        for s in series
    ):
        raise InvalidReading(payload, "bad_batch",
                             "'series' is not a list of [district, kind, unit] strings")
    names = ("series_ix", "device_id", "value", "ts", "seq", "lat", "lon")
    columns: dict[str, list[Any]] = {}
    for name in names:
        column = record.get(name)
        if type(column) is list:
            columns[name] = column
    lengths = {name: len(columns[name]) if name in columns else None for name in names}
    for optional in ("seq", "lat", "lon"):
        if record.get(optional) is None:  # absent: no reading has one
            del lengths[optional]
    if ("lat" in lengths) != ("lon" in lengths):
        raise InvalidReading(payload, "bad_batch", "'lat' and 'lon' come together or not at all")
    if None in lengths.values() or len(set(lengths.values())) != 1:
        detail = f"the columns' lengths do not match (None: missing or not a list): {lengths}"
        raise InvalidReading(payload, "bad_batch", detail)
    series_ix, device_ids = columns["series_ix"], columns["device_id"]
    if not all(type(ix) is int and 0 <= ix < len(series) for ix in series_ix):
        detail = f"'series_ix' holds a value that is not an index into the {len(series)} series"
        raise InvalidReading(payload, "bad_batch", detail)
    if not all(type(d) is str and d for d in device_ids):
        raise InvalidReading(payload, "bad_batch", "'device_id' holds a non-string or empty id")
    seqs = columns.get("seq")
    if seqs is not None and not all(s is None or (type(s) is int and s >= 0) for s in seqs):
        raise InvalidReading(payload, "bad_batch", "'seq' holds a value that is not an int >= 0")
    values = _floats(columns["value"], "value", payload)
    ts = _floats(columns["ts"], "ts", payload)
    lats, lons = columns.get("lat"), columns.get("lon")
    for name, column in (("lat", lats), ("lon", lons)):
        if column is not None and not all(x is None or type(x) in (int, float) for x in column):
            raise InvalidReading(payload, "bad_batch", f"{name!r} holds a value that is not a "
                                 "number or null")
    triples = tuple((d, k, u) for d, k, u in series)
    return ReadingBatch(triples, series_ix, device_ids, values, ts, seqs, lats, lons)


def _floats(column: list[Any], name: str, payload: bytes) -> list[float]:
    if all(type(x) is float for x in column):
        return column
    if not all(type(x) in (int, float) for x in column):
        raise InvalidReading(payload, "bad_batch", f"{name!r} holds a value that is not a number")
    return [float(x) for x in column]


def readings_in(payload: bytes) -> list[Reading]:
    """The readings of a ``readings`` record: a batch's, or a single reading's (taken as the
    bridge wrote it). Raises InvalidReading when the record is neither."""
    batch = decode_batch(payload)
    if batch is not None:
        return batch.readings()
    try:
        r = orjson.loads(payload)
        seq, lat, lon = r.get("seq"), r.get("lat"), r.get("lon")
        return [Reading(str(r["device_id"]), str(r["district"]), str(r["kind"]),
                        float(r["value"]), str(r["unit"]), float(r["ts"]),
                        None if seq is None else int(seq),
                        None if lat is None else float(lat), None if lon is None else float(lon))]
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        detail = f"not a batch nor a single reading: {exc!r}"
        raise InvalidReading(payload, "bad_batch", detail) from None
