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
position's is reported to ``on_mismatch(device_id, placed)`` (the position wins); a batch is
then checked reading by reading, each placed as :meth:`ReadingParser.parse` places it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from models.errors import InvalidReading

if TYPE_CHECKING:  # shapely loads only where a placement is made (the flow)
    from models.placement import Placed, Placement
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
        district, lat, lon = reading.district, reading.lat, reading.lon
        try:
            if self._placement is not None:
                district, lat, lon = self._place(reading.device_id, district, lat, lon, b"")
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
        the refusals of the others (as :meth:`check` raises them), each in the batch's order.
        A series' district, kind and unit are judged once per batch, the range and the clock
        per reading; with a placement, or readings that carry positions, each reading is
        checked (and placed) by :meth:`check`."""
        if self._placement is not None or batch.lats is not None:
            return self._check_each(batch, now)
        series: list[tuple[str, str, str]] = []
        specs: list[tuple[float, float, float, float] | None] = []
        for district, kind_id, unit in batch.series:
            kind = self._kinds.get(kind_id)
            conversion = self._units[kind_id].get(unit) if kind is not None else None
            if district not in self._districts or kind is None or conversion is None:
                series.append((district, kind_id, unit))
                specs.append(None)  # every reading of it is refused, by check below
                continue
            series.append((district, kind_id, kind.unit))
            specs.append((*conversion, *kind.range))
        seqs = batch.seqs if batch.seqs is not None else [None] * len(batch)
        limit = now + self._max_future_s
        kept: tuple[list[int], list[str], list[float], list[float], list[int | None]] = (
            [], [], [], [], [])
        keep_ix, keep_device, keep_value, keep_ts, keep_seq = kept
        refused: list[InvalidReading] = []
        for i, (ix, device_id, value, ts, seq) in enumerate(zip(
            batch.series_ix, batch.device_ids, batch.values, batch.ts, seqs, strict=True
        )):
            spec = specs[ix]
            if spec is not None:
                scale, offset, low, high = spec
                value = value * scale + offset
                if low <= value <= high and ts <= limit:  # (NaN is in no range)
                    keep_ix.append(ix)
                    keep_device.append(device_id)
                    keep_value.append(value)
                    keep_ts.append(ts)
                    keep_seq.append(seq)
                    continue
            try:  # the exact refusal (the checks above are check's, in short)
                self.check(batch.reading(i), now)
            except InvalidReading as exc:
                refused.append(exc)
            else:  # passes after all (an unplaced reading): check the batch one by one
                return self._check_each(batch, now)
        checked = replace(batch, series=tuple(series), series_ix=keep_ix, device_ids=keep_device,
                          values=keep_value, ts=keep_ts,
                          seqs=None if batch.seqs is None else keep_seq)
        return checked, refused

    def _check_each(
        self, batch: ReadingBatch, now: float
    ) -> tuple[ReadingBatch, list[InvalidReading]]:
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
        self, device_id: str, given: str, lat: float | None, lon: float | None, payload: bytes
    ) -> tuple[str, float | None, float | None]:
        """(district, lat, lon): the district of the reading's position (its own, else its
        registered device's, which the reading then carries), else ``given`` (``""``: none
        given) with no position; InvalidReading outside every district."""
        assert self._placement is not None
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
