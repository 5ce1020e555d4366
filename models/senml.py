"""SenML packs (RFC 8428, JSON): many readings in one message, from a gateway.

A gateway (a LoRaWAN network server, a building's collector, a department's system) sends a
*pack*: a JSON array of records, where base fields (``bn`` name, ``bt`` time, ``bu`` unit, ``bv``
value, ``bs`` sum, ``bver`` version) apply to their record and every later one until changed::

    [{"bn": "old-town/pm25/", "bt": 1795669200, "bu": "ug/m3",
      "n": "pm25-old-town-001", "v": 17.2},
     {"n": "pm25-old-town-002", "t": -5, "v": 0.019, "u": "mg/m3"}]

    packs = PackParser(reading_parser(settings), max_pack_bytes=65536)
    result = packs.parse(payload, now)     # InvalidReading only if the whole pack is refused
    result.readings                        # [(index, Reading), ...] in pack order
    result.refused                         # [RecordRefusal(index, error, rejection), ...]

Naming convention: a record's full name (``bn`` + ``n``) is ``<district>/<kind>/<device_id>``,
the topic the device would publish on without the MQTT prefix, so a pack for one district and
kind sets ``bn`` to ``"<district>/<kind>/"`` and ``n`` to each device id.

Resolution follows RFC 8428 section 4: the name is ``bn + n`` (non-empty, only ``A-Za-z0-9-:./_``,
starting with a letter or digit); the time ``bt + t`` is UTC epoch seconds when it is at least
2**28, and otherwise seconds relative to ``now`` (negative: in the past); the unit is ``u``, else
``bu``; the value ``bv + v``. A record holding only base fields sets them and is no measurement
(no reading, no refusal). Then each record is validated as one MQTT reading is
(:meth:`models.readings.ReadingParser.reading`): known district and kind, a unit the kind
accepts (converted to its canonical unit), a finite value in range, a time not too far ahead.
cityheart readings are numbers with a unit, so a record with ``vs``, ``vb`` or ``vd`` instead of
``v``, or with no unit at all, is refused.

A record that cannot become a reading is refused on its own, with its index in the pack: the
rest of the pack goes on. A pack is refused whole (InvalidReading) when it is not a non-empty
JSON array (``oversized``, ``invalid_json``, ``not_a_pack``), when its version is not one this
parser reads (``unsupported_version``: a ``bver`` above 10, or records that disagree), when a
record carries a must-understand field (a name ending in ``_``) that cityheart does not know
(``must_understand``: RFC 8428 section 4.4 requires an error, and such a field may change how
later records read), or when a base field has the wrong type (``wrong_type``: every later
record would resolve against it). Unknown fields without the ``_`` are ignored, as the RFC asks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from models.errors import InvalidReading
from models.readings import Reading, ReadingParser
from models.vitals.records import Rejection

__all__ = [
    "MAX_VERSION",
    "RELATIVE_TIME_LIMIT",
    "SENML_REASONS",
    "PackParser",
    "PackResult",
    "RecordRefusal",
    "SenmlRecord",
    "decode_pack",
    "resolve",
]

MAX_VERSION = 10
"""The SenML version RFC 8428 defines (``bver``'s default); a pack of a later one is refused."""

RELATIVE_TIME_LIMIT = 2**28
"""Times below this (``bt + t``) are seconds relative to now; at or above it, UTC epoch seconds."""

SENML_REASONS = ("not_a_pack", "unsupported_version", "must_understand", "bad_name", "bad_record")
"""Reason codes of SenML refusals, besides :data:`models.readings.REASONS` (the record-level
checks: ``not_an_object``, ``wrong_type``, ``missing_field``, ``bad_timestamp`` and the
reading's own)."""

_BASE = {"bn": str, "bt": float, "bu": str, "bv": float, "bs": float}
_REGULAR = {"n": str, "u": str, "v": float, "vs": str, "vb": bool, "vd": str, "s": float,
            "t": float, "ut": float}
_VALUES = ("v", "vs", "vb", "vd")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*")


@dataclass(frozen=True, slots=True)
class SenmlRecord:
    """One resolved record (RFC 8428 section 4.6): full name, absolute time, its own unit."""

    index: int
    """Where the record is in its pack (0 for the first)."""
    name: str
    time: float
    """UTC epoch seconds."""
    unit: str | None = None
    value: float | None = None
    string_value: str | None = None
    bool_value: bool | None = None
    data_value: str | None = None
    sum: float | None = None
    update_time: float | None = None

    def resolved(self) -> dict[str, Any]:
        """The record in the RFC's resolved JSON form (labels ``n u v vs vb vd s t ut``)."""
        fields = (("n", self.name), ("u", self.unit), ("v", self.value),
                  ("vs", self.string_value), ("vb", self.bool_value), ("vd", self.data_value),
                  ("s", self.sum), ("t", self.time), ("ut", self.update_time))
        return {label: value for label, value in fields if value is not None}

    def to_json(self) -> bytes:
        """:meth:`resolved` as JSON (what a refused record's dead letter holds)."""
        try:
            return orjson.dumps(self.resolved())
        except TypeError:  # a non-finite number, read by the lenient decoder
            return json.dumps(self.resolved()).encode()


@dataclass(frozen=True, slots=True)
class RecordRefusal:
    """A record of a pack that did not become a reading, and why.

    ``error.payload`` is the record as JSON (resolved when it could be, else as sent), and
    ``rejection`` is set when the reading was out of range: the flow counts it against the
    device's health, as it counts a single reading refused so.
    """

    index: int
    error: InvalidReading
    rejection: Rejection | None = None


@dataclass(frozen=True, slots=True)
class PackResult:
    """What became of a pack's records: readings (with their index) and refusals, in order."""

    readings: list[tuple[int, Reading]]
    refused: list[RecordRefusal]
    records: int
    """How many records the pack held (header-only records included)."""


def decode_pack(payload: bytes, *, max_bytes: int) -> list[Any]:
    """The JSON array of ``payload``; InvalidReading (``oversized``, ``invalid_json``,
    ``not_a_pack``) when it is too large, not JSON or not a non-empty array."""
    if len(payload) > max_bytes:
        detail = f"pack of {len(payload)} bytes exceeds {max_bytes}"
        raise InvalidReading(payload, "oversized", detail)
    try:
        pack = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # as for single readings: NaN and Infinity are read so the record's check names them
        try:
            pack = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidReading(payload, "invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(pack, list):
        detail = f"a SenML pack is a JSON array of records, got a JSON {type(pack).__name__}"
        raise InvalidReading(payload, "not_a_pack", detail)
    if not pack:
        raise InvalidReading(payload, "not_a_pack", "the pack holds no records")
    return pack


def resolve(
    pack: Sequence[Any], now: float, *, payload: bytes = b""
) -> tuple[list[SenmlRecord], list[RecordRefusal]]:
    """Resolve a decoded pack's records against its base fields, ``now`` (UTC epoch seconds)
    anchoring relative times; records that cannot be resolved are refused by index.

    Raises InvalidReading (carrying ``payload``) when the whole pack must be refused.
    """
    _check_pack(pack, payload)
    records: list[SenmlRecord] = []
    refused: list[RecordRefusal] = []
    base: dict[str, Any] = {}
    for index, raw in enumerate(pack):
        if not isinstance(raw, dict):
            detail = f"record {index} is a JSON {type(raw).__name__}, not an object"
            refused.append(RecordRefusal(index, InvalidReading(_dumps(raw), "not_an_object",
                                                               detail)))
            continue
        base.update({label: raw[label] for label in _BASE if label in raw})
        if not any(label in raw for label in _REGULAR):
            if any(label in raw for label in (*_BASE, "bver")):
                continue  # base fields only: they apply to this record and the ones after it
            detail = f"record {index} holds no SenML field"
            refused.append(RecordRefusal(index, InvalidReading(_dumps(raw), "missing_field",
                                                               detail)))
            continue
        try:
            records.append(_resolve_record(index, raw, base, now))
        except InvalidReading as exc:
            refused.append(RecordRefusal(index, exc))
    return records, refused


class PackParser:
    """Turn SenML packs into readings, validated as single readings are."""

    def __init__(self, readings: ReadingParser, *, max_pack_bytes: int = 65536) -> None:
        self._readings = readings
        self._max_bytes = max_pack_bytes

    def parse(self, payload: bytes, now: float) -> PackResult:
        """The readings and refusals of the pack ``payload`` received at ``now`` (UTC epoch
        seconds). Raises InvalidReading when the whole pack is refused, and nothing else."""
        pack = decode_pack(payload, max_bytes=self._max_bytes)
        records, refused = resolve(pack, now, payload=payload)
        readings: list[tuple[int, Reading]] = []
        for record in records:
            try:
                readings.append((record.index, self.reading(record, now)))
            except InvalidReading as exc:
                refused.append(RecordRefusal(record.index, exc, _rejection(record, exc)))
        refused.sort(key=lambda refusal: refusal.index)
        return PackResult(readings, refused, len(pack))

    def reading(self, record: SenmlRecord, now: float) -> Reading:
        """The Reading of one resolved record; InvalidReading (payload: the record's JSON)."""
        try:
            district, kind, device_id = _place(record)
            if record.value is None:
                _no_number(record)
            if record.unit is None:
                detail = f"record {record.index} has no unit (u) and no base unit (bu)"
                raise InvalidReading(b"", "missing_field", detail)
            return self._readings.reading(device_id, district, kind, record.value, record.unit,
                                          record.time, now)
        except InvalidReading as exc:
            raise InvalidReading(record.to_json(), exc.reason, exc.detail) from None


# -- resolution ---------------------------------------------------------------------------------


def _check_pack(pack: Sequence[Any], payload: bytes) -> None:
    """Refuse the whole pack for a version it cannot read, a must-understand field or a bad
    base field (every record after it would resolve against it)."""
    versions = set()
    for index, raw in enumerate(pack):
        if not isinstance(raw, dict):
            continue
        for label in raw:
            if isinstance(label, str) and label.endswith("_"):
                detail = (f"record {index} has the must-understand field {label!r}, which "
                          "cityheart does not know")
                raise InvalidReading(payload, "must_understand", detail)
        if "bver" in raw:
            version = raw["bver"]
            if type(version) is not int or version < 1:
                detail = f"record {index}: bver {version!r} is not a positive whole number"
                raise InvalidReading(payload, "unsupported_version", detail)
            versions.add(version)
        for label, expected in _BASE.items():
            if label in raw and not _is(raw[label], expected):
                detail = (f"record {index}: base field {label!r} must be a "
                          f"{_type_name(expected)}, got {raw[label]!r}")
                raise InvalidReading(payload, "wrong_type", detail)
    if len(versions) > 1:
        detail = f"records disagree on the version (bver {sorted(versions)})"
        raise InvalidReading(payload, "unsupported_version", detail)
    if versions and max(versions) > MAX_VERSION:
        detail = (f"bver {max(versions)} is later than SenML version {MAX_VERSION}, the one "
                  "cityheart reads")
        raise InvalidReading(payload, "unsupported_version", detail)


def _resolve_record(
    index: int, raw: dict[str, Any], base: dict[str, Any], now: float
) -> SenmlRecord:
    for label, expected in _REGULAR.items():
        if label in raw and not _is(raw[label], expected):
            detail = (f"record {index}: field {label!r} must be a {_type_name(expected)}, "
                      f"got {raw[label]!r}")
            raise InvalidReading(_dumps(raw), "wrong_type", detail)
    present = [label for label in _VALUES if label in raw]
    if len(present) > 1:
        detail = f"record {index} has {len(present)} value fields {present}: at most one"
        raise InvalidReading(_dumps(raw), "bad_record", detail)
    if not present and "s" not in raw:
        detail = f"record {index} has no value (v, vs, vb or vd) and no sum (s)"
        raise InvalidReading(_dumps(raw), "missing_field", detail)
    name = base.get("bn", "") + raw.get("n", "")
    if not name:
        detail = f"record {index} has no name: neither bn nor n"
        raise InvalidReading(_dumps(raw), "bad_name", detail)
    if not _NAME.fullmatch(name):
        detail = (f"record {index}: name {name!r} must use only A-Z a-z 0-9 - : . / _ and "
                  "start with a letter or digit")
        raise InvalidReading(_dumps(raw), "bad_name", detail)
    time = float(base.get("bt", 0.0)) + float(raw.get("t", 0.0))
    if not math.isfinite(time):
        detail = f"record {index}: time bt + t = {time!r} is not a finite number"
        raise InvalidReading(_dumps(raw), "bad_timestamp", detail)
    if time < RELATIVE_TIME_LIMIT:
        time = now + time
    value = float(base.get("bv", 0.0)) + float(raw["v"]) if "v" in raw else None
    total = None
    if "s" in raw or "bs" in base:
        total = float(base.get("bs", 0.0)) + float(raw.get("s", 0.0))
    return SenmlRecord(
        index, name, time, unit=raw.get("u", base.get("bu")), value=value,
        string_value=raw.get("vs"), bool_value=raw.get("vb"), data_value=raw.get("vd"),
        sum=total, update_time=None if "ut" not in raw else float(raw["ut"]),
    )


def _is(value: Any, expected: type) -> bool:
    if expected is float:
        return type(value) in (int, float)  # JSON numbers; bool is no number here
    return type(value) is expected


def _type_name(expected: type) -> str:
    return {float: "number", str: "string", bool: "boolean"}[expected]


def _dumps(raw: Any) -> bytes:
    try:
        return orjson.dumps(raw)
    except TypeError:
        return json.dumps(raw).encode()


# -- records to readings ------------------------------------------------------------------------


def _place(record: SenmlRecord) -> tuple[str, str, str]:
    parts = record.name.split("/")
    if len(parts) != 3 or not all(parts):
        detail = (f"record {record.index}: name {record.name!r} is not "
                  "<district>/<kind>/<device_id>")
        raise InvalidReading(b"", "bad_name", detail)
    district, kind, device_id = parts
    return district, kind, device_id


def _no_number(record: SenmlRecord) -> NoReturn:
    for label, value in (("vs", record.string_value), ("vb", record.bool_value),
                         ("vd", record.data_value)):
        if value is not None:
            detail = (f"record {record.index} carries {label} {value!r}: cityheart readings "
                      "are numbers (v)")
            raise InvalidReading(b"", "wrong_type", detail)
    detail = f"record {record.index} has a sum (s) but no value (v)"
    raise InvalidReading(b"", "missing_field", detail)


def _rejection(record: SenmlRecord, error: InvalidReading) -> Rejection | None:
    if error.reason != "out_of_range":
        return None
    district, kind, device_id = record.name.split("/")  # out of range: the name was checked
    return Rejection(district, kind, device_id, record.time)
