"""Device telemetry: the Reading type and the one parser every stage uses.

Devices publish JSON on ``<prefix>/<district>/<kind>/<device_id>``::

    {"device_id": "pm25-old-town-001", "kind": "pm25", "value": 17.2,
     "unit": "ug/m3", "ts": "2026-11-26T08:00:00.125Z", "seq": 42}

``seq`` (a per-device counter) is optional, and so are ``lat`` and ``lon`` (WGS84 degrees, both
or neither): where the reading was taken, for mobile devices (buses, drones, handhelds).
:class:`ReadingParser` turns such a payload into a :class:`Reading` in the kind's canonical
unit, or raises :class:`~models.errors.InvalidReading` with a reason code and a detail naming
the field and value. Nothing else escapes it.

The bridge writes valid readings to Kafka in batches (:mod:`models.reading_batch`); the flow
checks each again with :meth:`ReadingParser.check`. :func:`encode` is one reading's JSON (a
dead letter's payload; the records of bridges before batches, and of the other ways in, which
the flow reads with :meth:`ReadingParser.parse`, ``topic=None``: the district then comes from
the payload). A device that
does not know its district publishes with :data:`UNPLACED` as the topic's district level; such
a reading's district is ``""`` until a parser with a :class:`~models.placement.Placement` (the
flow's) places it by its position, its own or its registered device's. Given a placement, the
parser places every reading that has a position: a position outside every district is refused
as ``outside_city``, and a district the topic (or payload) names that disagrees with the
position's is reported to ``on_mismatch(device_id, placed)`` (the position wins). A batch is
checked at once (:meth:`ReadingParser.check_batch`: its positions placed in one query) with
exactly the results of checking its readings one by one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from models.errors import InvalidReading
from models.placement import Placed

if TYPE_CHECKING:  # shapely loads only where a placement is made (the flow)
    from models.placement import Placement
    from models.reading_batch import ReadingBatch

__all__ = ["REASONS", "UNPLACED", "KindSpec", "Reading", "ReadingParser", "encode"]

UNPLACED = "-"
"""The district level of a topic whose device does not say its district
(``city/-/pm25/bus-12``): the flow places its readings by position."""

REASONS = (
    "oversized",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "bad_topic",
    "topic_mismatch",
    "unknown_district",
    "unknown_kind",
    "unknown_unit",
    "not_finite",
    "out_of_range",
    "bad_timestamp",
    "future_timestamp",
    "bad_position",
    "outside_city",
    "rate_limited",
    "not_allowed",
    "bad_row",
    "missing_value",
    "duplicate",
    "unknown_format",
    "bad_batch",
)
"""Every reason code an InvalidReading may carry. Not from the parser: ``rate_limited`` (the
bridge's per-device limit), ``not_allowed`` (an HTTP source's key does not cover the reading),
``bad_row`` (a CSV row that cannot be read), ``missing_value`` (an import's missing-value
marker or an empty cell) and ``duplicate`` (a row of a file repeating an earlier one);
``outside_city`` only when the parser is given a placement
(:class:`models.placement.Placement`); ``unknown_format`` and ``bad_batch`` only from a
``readings`` record that is a batch (:mod:`models.reading_batch`)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One valid reading, in its kind's canonical unit, stamped in UTC epoch seconds."""

    device_id: str
    district: str
    kind: str
    value: float
    unit: str
    ts: float
    seq: int | None = None
    lat: float | None = None
    """Where the reading was taken (WGS84 degrees), when the payload says; else None."""
    lon: float | None = None

    @property
    def time(self) -> datetime:
        """The reading's event time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.ts, UTC)


def encode(reading: Reading) -> bytes:
    """The canonical JSON of a reading, as the bridge writes it to Kafka."""
    record = {
        "device_id": reading.device_id,
        "district": reading.district,
        "kind": reading.kind,
        "value": reading.value,
        "unit": reading.unit,
        "ts": reading.ts,
    }
    if reading.seq is not None:
        record["seq"] = reading.seq
    if reading.lat is not None and reading.lon is not None:
        record["lat"] = reading.lat
        record["lon"] = reading.lon
    return orjson.dumps(record)


class KindSpec(Protocol):
    """What the parser needs of a sensor kind (``settings.config.Kind`` is one)."""

    @property
    def unit(self) -> str: ...  # the canonical unit

    @property
    def convert(self) -> Mapping[str, tuple[float, float]]: ...  # unit -> (scale, offset)

    @property
    def range(self) -> tuple[float, float]: ...  # valid values, in the canonical unit


class ReadingParser:
    """Validate and normalise device payloads against the city's districts and kinds."""

    def __init__(
        self,
        kinds: Mapping[str, KindSpec],
        districts: Sequence[str],
        *,
        topic_prefix: str = "city",
        max_future_s: float = 300.0,
        max_payload_bytes: int = 4096,
        placement: Placement | None = None,
        on_mismatch: Callable[[str, Placed], None] | None = None,
    ) -> None:
        self._placement = placement
        self._on_mismatch = on_mismatch
        self._kinds = dict(kinds)
        self._districts = frozenset(districts)
        self._prefix = topic_prefix
        self._max_future_s = max_future_s
        self._max_payload_bytes = max_payload_bytes
        # unit -> (scale, offset) per kind, canonical unit included as identity
        self._units = {
            kind_id: {kind.unit: (1.0, 0.0), **kind.convert} for kind_id, kind in kinds.items()
        }

    def parse(self, payload: bytes, topic: str | None, now: float) -> Reading:
        """Turn ``payload`` (received on MQTT ``topic``, or None from Kafka) into a Reading.

        ``now`` is the current UTC time in epoch seconds, used to refuse timestamps more than
        ``max_future_s`` ahead. Raises InvalidReading, and nothing else.
        """
        if len(payload) > self._max_payload_bytes:
            detail = f"payload of {len(payload)} bytes exceeds {self._max_payload_bytes}"
            raise InvalidReading(payload, "oversized", detail)
        record = self._decode(payload)
        device_id = _text(record, "device_id", payload)
        kind_id = _text(record, "kind", payload)
        if topic is None:
            district = "" if record.get("district") == "" else _text(record, "district", payload)
        else:
            district = self._district_from_topic(topic, kind_id, device_id, payload)
        lat, lon = _position(record, payload)
        if self._placement is not None:
            district, lat, lon = self._place(device_id, district, lat, lon, payload)
        # without a placement a record from Kafka may have no district ("": unplaced)
        kind = self._kind_in(district, kind_id, payload,
                             empty_ok=self._placement is None and not district)
        value = _number(record, "value", payload)
        unit = _text(record, "unit", payload)
        value = self._canonical(kind_id, kind, value, unit, payload)
        ts = _timestamp(record, payload)
        self._not_ahead(ts, now, payload)
        seq = record.get("seq")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise InvalidReading(payload, "wrong_type", f"seq {seq!r} is not a whole number >= 0")
        return Reading(device_id, district, kind_id, value, kind.unit, ts, seq, lat, lon)

    def reading(
        self, device_id: str, district: str, kind_id: str, value: float, unit: str, ts: float,
        now: float, *, seq: int | None = None, payload: bytes = b"",
    ) -> Reading:
        """A Reading from fields already read from another format (a SenML record's, say),
        checked as :meth:`parse` checks a payload's: district, kind, unit (converted to the
        canonical one), finite value in range, ``ts`` (UTC epoch seconds) not too far ahead of
        ``now``. Raises InvalidReading carrying ``payload``, and nothing else."""
        kind = self._kind_in(district, kind_id, payload)
        value = self._canonical(kind_id, kind, value, unit, payload)
        if not math.isfinite(ts) or ts < 0:
            raise InvalidReading(payload, "bad_timestamp", f"ts {ts!r} is not a UTC epoch time")
        self._not_ahead(ts, now, payload)
        return Reading(device_id, district, kind_id, value, kind.unit, ts, seq)

    def check(self, reading: Reading, now: float) -> Reading:
        """``reading`` (decoded from a batch the bridge wrote) checked again against this
        parser's districts, kinds, units, ranges and clock, as :meth:`parse` checks a payload,
        and placed as it places one; in the kind's canonical unit. Raises InvalidReading whose
        payload is the reading's JSON (:func:`encode`)."""
        return self._check(reading, now, None)

    def _check(self, reading: Reading, now: float, placed: Placed | None) -> Reading:
        """:meth:`check`, with the reading's placement already found (None: find it)."""
        district, lat, lon = reading.district, reading.lat, reading.lon
        try:
            if self._placement is not None:
                district, lat, lon = self._place(reading.device_id, district, lat, lon, b"",
                                                 placed)
            kind = self._kind_in(district, reading.kind, b"",
                                 empty_ok=self._placement is None and not district)
            value = self._canonical(reading.kind, kind, reading.value, reading.unit, b"")
            self._not_ahead(reading.ts, now, b"")
        except InvalidReading as exc:
            raise InvalidReading(encode(reading), exc.reason, exc.detail) from None
        if (value == reading.value and kind.unit == reading.unit and district == reading.district
                and lat == reading.lat and lon == reading.lon):
            return reading
        return Reading(reading.device_id, district, reading.kind, value, kind.unit,
                       reading.ts, reading.seq, lat, lon)

    def check_batch(
        self, batch: ReadingBatch, now: float
    ) -> tuple[ReadingBatch, list[InvalidReading]]:
        """The readings of ``batch`` that pass :meth:`check` (a batch, in canonical units), and
        the refusals of the others (as :meth:`check` raises them), each in the batch's order:
        exactly what checking and placing the readings one by one gives, mismatches reported in
        the same order. A series' kind and unit are judged once per batch, the positions
        placed at once (:meth:`~models.placement.Placement.place_many`); a reading that fails
        a check, or whose position disagrees with its district, goes through :meth:`check`
        alone for the exact refusal or report."""
        from models.reading_batch import ReadingBatch  # (it imports this module)

        specs = [self._spec(kind_id, unit) for _, kind_id, unit in batch.series]
        givens = [district for district, _, _ in batch.series]
        positions, located = self._positions(batch)
        out = _Columns(batch.series, [
            self._kinds[k].unit if spec is not None else u
            for (_, k, u), spec in zip(batch.series, specs, strict=True)])
        keep_ix, keep_device, keep_value, keep_ts, keep_seq, keep_lat, keep_lon = out.appends()
        of_series = out.of_series
        refused: list[InvalidReading] = []
        districts, limit = self._districts, now + self._max_future_s
        unplaced = self._placement is None
        seqs = batch.seqs if batch.seqs is not None else repeat(None)
        for i, (ix, device_id, value, ts, seq, position, where) in enumerate(zip(
            batch.series_ix, batch.device_ids, batch.values, batch.ts, seqs, positions, located,
            strict=False,
        )):
            given = givens[ix]
            if unplaced or position is None:
                district = given
                ok = district in districts or (unplaced and not district)
            else:  # placed by its position; a mismatch goes the long way to be reported
                district = where
                ok = district in districts and (not given or given == district)
            spec = specs[ix]
            if ok and spec is not None:
                scale, offset, low, high = spec
                value = value * scale + offset
                if low <= value <= high and ts <= limit:  # (NaN is in no range)
                    o = of_series[ix].get(district)
                    keep_ix(o if o is not None else out.number(ix, district))
                    keep_device(device_id)
                    keep_value(value)
                    keep_ts(ts)
                    keep_seq(seq)
                    lat, lon = position if position is not None else (None, None)
                    keep_lat(lat)
                    keep_lon(lon)
                    continue
            try:  # the exact refusal, or a mismatch to report
                placed = None if unplaced else Placed(
                    (given or None) if position is None else where, given or None, position)
                out.add_reading(self._check(batch.reading(i), now, placed))
            except InvalidReading as exc:
                refused.append(exc)
        return out.batch(ReadingBatch), refused

    def _positions(
        self, batch: ReadingBatch
    ) -> tuple[Sequence[tuple[Any, Any] | None], Iterable[str | None]]:
        """Each reading's position and the district holding it (with a placement: its own
        position, else its device's registered one), or its own (lat, lon) as given."""
        if self._placement is not None:
            return self._placement.place_many(batch.device_ids, batch.lats, batch.lons)
        if batch.lats is None or batch.lons is None:
            return [None] * len(batch), repeat(None)
        return list(zip(batch.lats, batch.lons, strict=True)), repeat(None)

    def _spec(self, kind_id: str, unit: str) -> tuple[float, float, float, float] | None:
        """(scale, offset, low, high) of readings of ``kind_id`` in ``unit``, None: refused."""
        kind = self._kinds.get(kind_id)
        conversion = self._units[kind_id].get(unit) if kind is not None else None
        if kind is None or conversion is None:
            return None
        return (*conversion, *kind.range)

    def _check_each(
        self, batch: ReadingBatch, now: float
    ) -> tuple[ReadingBatch, list[InvalidReading]]:
        """:meth:`check_batch` the slow way, reading by reading (what the tests compare it to)."""
        from models.reading_batch import ReadingBatch  # (it imports this module)

        kept, refusals = [], []
        for reading in batch.readings():
            try:
                kept.append(self.check(reading, now))
            except InvalidReading as exc:
                refusals.append(exc)
        return ReadingBatch.of(kept), refusals

    def _kind_in(self, district: str, kind_id: str, payload: bytes, *,
                 empty_ok: bool = False) -> KindSpec:
        if district not in self._districts and not empty_ok:
            raise InvalidReading(payload, "unknown_district", f"district {district!r} is unknown")
        kind = self._kinds.get(kind_id)
        if kind is None:
            raise InvalidReading(payload, "unknown_kind", f"kind {kind_id!r} is unknown")
        return kind

    def _canonical(
        self, kind_id: str, kind: KindSpec, value: float, unit: str, payload: bytes
    ) -> float:
        """``value`` in ``unit`` converted to the kind's canonical unit, finite and in range."""
        conversion = self._units[kind_id].get(unit)
        if conversion is None:
            accepted = sorted(self._units[kind_id])
            detail = f"unit {unit!r} is not one of {accepted} for kind {kind_id!r}"
            raise InvalidReading(payload, "unknown_unit", detail)
        scale, offset = conversion
        value = value * scale + offset
        if not math.isfinite(value):
            raise InvalidReading(payload, "not_finite", f"value {value!r} is not a finite number")
        low, high = kind.range
        if not low <= value <= high:
            detail = f"value {value!r} {kind.unit} is outside {kind_id} range [{low}, {high}]"
            raise InvalidReading(payload, "out_of_range", detail)
        return value

    def _not_ahead(self, ts: float, now: float, payload: bytes) -> None:
        if ts > now + self._max_future_s:
            ahead = ts - now
            detail = f"ts is {ahead:.0f} s ahead of the clock (at most {self._max_future_s:g} s)"
            raise InvalidReading(payload, "future_timestamp", detail)

    def _place(
        self, device_id: str, given: str, lat: float | None, lon: float | None, payload: bytes,
        placed: Placed | None = None,
    ) -> tuple[str, float | None, float | None]:
        """(district, lat, lon): the district of the reading's position (its own, else its
        registered device's, which the reading then carries), else ``given`` (``""``: none
        given) with no position; InvalidReading outside every district. ``placed``: the
        placement already found for it."""
        assert self._placement is not None
        if placed is None:
            placed = self._placement.place(device_id, lat, lon, given=given or None)
        if placed.position is None:
            if not given:
                detail = (f"the topic names no district ({UNPLACED!r}) and neither the reading "
                          f"nor device {device_id!r} has a registered position")
                raise InvalidReading(payload, "unknown_district", detail)
            return given, None, None
        if placed.district is None:
            where = f"lat {placed.position[0]:.6f}, lon {placed.position[1]:.6f}"
            detail = f"{where} is outside every district of the city"
            raise InvalidReading(payload, "outside_city", detail)
        if placed.mismatch and self._on_mismatch is not None:
            self._on_mismatch(device_id, placed)
        return placed.district, placed.position[0], placed.position[1]

    def _decode(self, payload: bytes) -> dict[str, Any]:
        try:
            record = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            # orjson refuses NaN, Infinity and huge integers; the standard library reads them so
            # that the checks below can name the real fault (not_finite) instead of "invalid JSON"
            try:
                record = json.loads(payload)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise InvalidReading(payload, "invalid_json", f"not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            detail = f"payload is a JSON {type(record).__name__}, not an object"
            raise InvalidReading(payload, "not_an_object", detail)
        return record

    def _district_from_topic(self, topic: str, kind: str, device_id: str, payload: bytes) -> str:
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != self._prefix:
            detail = f"topic {topic!r} is not {self._prefix}/<district>/<kind>/<device_id>"
            raise InvalidReading(payload, "bad_topic", detail)
        _, district, topic_kind, topic_device = parts
        if topic_kind != kind or topic_device != device_id:
            detail = (
                f"payload kind/device_id {kind}/{device_id} do not match topic {topic!r}"
            )
            raise InvalidReading(payload, "topic_mismatch", detail)
        return "" if district == UNPLACED else district


class _Columns:
    """The readings a batch keeps, as columns, their series numbered in order of first use
    (as :meth:`~models.reading_batch.ReadingBatch.of` numbers them)."""

    def __init__(self, series: Sequence[tuple[str, str, str]], units: Sequence[str]) -> None:
        self._series, self._units = series, units
        self._index: dict[tuple[str, str, str], int] = {}
        self.of_series: list[dict[str, int]] = [{} for _ in series]
        """Per series of the batch: its readings' district -> index of their kept series."""
        self.series_ix: list[int] = []
        self.device_ids: list[str] = []
        self.values: list[float] = []
        self.ts: list[float] = []
        self.seqs: list[int | None] = []
        self.lats: list[float | None] = []
        self.lons: list[float | None] = []

    def number(self, ix: int, district: str) -> int:
        """The kept series of readings of the batch's series ``ix`` placed in ``district``."""
        key = (district, self._series[ix][1], self._units[ix])
        out = self.of_series[ix][district] = self._index.setdefault(key, len(self._index))
        return out

    def appends(self) -> tuple[Callable[[Any], None], ...]:
        """The ``append`` of each column: series index, device, value, ts, seq, lat, lon."""
        return (self.series_ix.append, self.device_ids.append, self.values.append,
                self.ts.append, self.seqs.append, self.lats.append, self.lons.append)

    def add_reading(self, reading: Reading) -> None:
        """Keep ``reading``."""
        key = (reading.district, reading.kind, reading.unit)
        self.series_ix.append(self._index.setdefault(key, len(self._index)))
        self.device_ids.append(reading.device_id)
        self.values.append(reading.value)
        self.ts.append(reading.ts)
        self.seqs.append(reading.seq)
        self.lats.append(reading.lat)
        self.lons.append(reading.lon)

    def batch(self, cls: type[ReadingBatch]) -> ReadingBatch:
        """The kept readings as a ``cls``."""
        has_seq = any(seq is not None for seq in self.seqs)
        placed = any(lat is not None for lat in self.lats)
        return cls(tuple(self._index), self.series_ix, self.device_ids, self.values, self.ts,
                   self.seqs if has_seq else None, self.lats if placed else None,
                   self.lons if placed else None)


def _text(record: dict[str, Any], field: str, payload: bytes) -> str:
    value = record.get(field)
    if value is None:
        raise InvalidReading(payload, "missing_field", f"field {field!r} is missing")
    if not isinstance(value, str) or not value:
        detail = f"field {field!r} must be a non-empty string, got {value!r}"
        raise InvalidReading(payload, "wrong_type", detail)
    return value


def _number(record: dict[str, Any], field: str, payload: bytes) -> float:
    value = record.get(field)
    if value is None:
        raise InvalidReading(payload, "missing_field", f"field {field!r} is missing")
    if type(value) not in (int, float):
        detail = f"field {field!r} must be a number, got {value!r}"
        raise InvalidReading(payload, "wrong_type", detail)
    try:
        return float(value)
    except OverflowError:
        raise InvalidReading(
            payload, "not_finite", f"field {field!r} {value} is too large for a number"
        ) from None


def _position(record: dict[str, Any], payload: bytes) -> tuple[float | None, float | None]:
    """The payload's optional ``lat`` and ``lon`` (both or neither), WGS84 degrees."""
    lat, lon = record.get("lat"), record.get("lon")
    if lat is None and lon is None:
        return None, None
    if lat is None or lon is None:
        missing = "lon" if lon is None else "lat"
        detail = f"field {missing!r} is missing: give both lat and lon, or neither"
        raise InvalidReading(payload, "bad_position", detail)
    degrees = []
    for name, number, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        try:
            value = float(number) if type(number) in (int, float) else math.nan
        except OverflowError:
            value = math.inf
        if not abs(value) <= limit:  # NaN fails this too
            detail = f"field {name!r} must be a number of degrees in [-{limit:g}, {limit:g}], "
            detail += f"got {number!r}"
            raise InvalidReading(payload, "bad_position", detail)
        degrees.append(value)
    return degrees[0], degrees[1]


def _timestamp(record: dict[str, Any], payload: bytes) -> float:
    value = record.get("ts")
    if value is None:
        raise InvalidReading(payload, "missing_field", "field 'ts' is missing")
    if type(value) in (int, float):
        try:
            ts = float(value)
        except OverflowError:
            ts = math.inf
        if not math.isfinite(ts) or ts < 0:
            raise InvalidReading(payload, "bad_timestamp", f"ts {value!r} is not a UTC epoch time")
        return ts
    if not isinstance(value, str):
        detail = f"ts must be an ISO 8601 string or epoch seconds, got {value!r}"
        raise InvalidReading(payload, "wrong_type", detail)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidReading(
            payload, "bad_timestamp", f"ts {value!r} is not an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        detail = f"ts {value!r} has no time zone (send UTC, e.g. ...Z)"
        raise InvalidReading(payload, "bad_timestamp", detail)
    return moment.timestamp()
