"""Events that are not numbers: reports from people and systems, validated and encoded.

    parser = ReportParser(district_ids, locate=locator.locate, max_future_s=300)
    report = parser.parse(document, source="hotline", received_at=now)   # or InvalidReading
    encode_report(report)                      # the record on the ``reports`` topic
    decode_report(record_bytes)                # back (the flow, the recorder, the feed)

A report is what a hotline ticket, a field officer's note or a camera system's event says::

    {"kind": "noise", "text": "Loud music from the harbour warehouse since 23:00",
     "severity": "warning", "district": "harbour",          # or "lat": 48.14, "lon": 11.65
     "time": "2026-12-07T23:40:00Z", "reporter": "hotline:4711",
     "attachments": ["https://cams.example/clip/881.mp4"], "id": "ticket-2231"}

``kind`` is a lower-case identifier: a sensor kind (``noise``) lets a report join that kind's
incidents, anything else (``pothole``) opens its own. ``severity`` is ``info``, ``warning``
or ``critical`` (info is kept and shown, never an incident). ``time`` defaults to when it was
received; ``id`` (the sender's own, so a resent report is one report) defaults to a hash of
the source, reporter, kind, time and text. A report that cannot be read raises
:class:`~models.errors.InvalidReading` with the reasons readings use (``missing_field``,
``wrong_type``, ``unknown_district``, ``bad_timestamp``, ``future_timestamp``,
``invalid_json``, ``not_an_object``, ``oversized``) and a detail naming the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.errors import InvalidReading

__all__ = ["REPORT_SEVERITIES", "Report", "ReportParser", "decode_report", "encode_report"]

REPORT_SEVERITIES = ("info", "warning", "critical")

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class Report(BaseModel):
    """One validated report: where (a district; the position when given), when, what, who."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: str
    text: str
    severity: Literal["info", "warning", "critical"]
    district: str
    ts: float
    reporter: str
    source: str
    received_at: float
    lat: float | None = None
    lon: float | None = None
    attachments: tuple[str, ...] = ()


class _Sent(BaseModel):
    """A report as sent (before its place is resolved and its id given)."""

    model_config = ConfigDict(extra="forbid", strict=False)

    kind: str
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    severity: Literal["info", "warning", "critical"] = "warning"
    district: str | None = None
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    time: datetime | float | None = None
    reporter: Annotated[str, Field(min_length=1, max_length=200)]
    attachments: Annotated[list[str], Field(max_length=20)] = Field(default_factory=list)
    id: str | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not _KIND.match(value):
            msg = f"kind {value!r} must be a lower-case identifier (letters, digits, _)"
            raise ValueError(msg)
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            msg = f"id {value!r} must be 1-128 letters, digits or . _ : -"
            raise ValueError(msg)
        return value

    @field_validator("attachments")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("https://", "http://")) or len(url) > 2000:
                msg = f"attachment {url[:80]!r} is not an http(s) URL (a reference, not a file)"
                raise ValueError(msg)
        return value


def _reason(error: Any) -> str:
    return "missing_field" if error["type"] == "missing" else "wrong_type"


class ReportParser:
    """Validate reports against the city's districts; raise InvalidReading, nothing else."""

    def __init__(
        self, district_ids: Sequence[str], *, locate: Callable[[float, float], str | None],
        max_future_s: float = 300.0, max_bytes: int = 65_536,
    ) -> None:
        self._districts = frozenset(district_ids)
        self._locate = locate
        self._max_future_s = max_future_s
        self._max_bytes = max_bytes

    def parse_bytes(self, payload: bytes, *, source: str, received_at: float) -> Report:
        """A report from one JSON object's bytes."""
        if len(payload) > self._max_bytes:
            detail = f"report of {len(payload)} bytes exceeds {self._max_bytes}"
            raise InvalidReading(payload, "oversized", detail)
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidReading(payload, "invalid_json", f"not JSON: {exc}") from None
        return self.parse(document, source=source, received_at=received_at, payload=payload)

    def parse(self, document: object, *, source: str, received_at: float,
              payload: bytes | None = None) -> Report:
        """A report from a decoded JSON value (``payload``: its bytes, for the error)."""
        raw = payload if payload is not None else orjson.dumps(document, default=str)
        if not isinstance(document, dict):
            raise InvalidReading(raw, "not_an_object", "a report must be a JSON object")
        try:
            sent = _Sent.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "report"
            raise InvalidReading(raw, _reason(first), f"{where}: {first['msg']}") from None
        district = self._district(sent, raw)
        ts = self._time(sent, received_at, raw)
        report_id = sent.id or _digest(source, sent.reporter, sent.kind, ts, sent.text)
        return Report(id=report_id, kind=sent.kind, text=sent.text, severity=sent.severity,
                      district=district, ts=ts, reporter=sent.reporter, source=source,
                      received_at=received_at, lat=sent.lat, lon=sent.lon,
                      attachments=tuple(sent.attachments))

    def _district(self, sent: _Sent, raw: bytes) -> str:
        if sent.district is not None:
            if sent.district not in self._districts:
                detail = f"district {sent.district!r} is unknown"
                raise InvalidReading(raw, "unknown_district", detail)
            return sent.district
        if sent.lat is None or sent.lon is None:
            raise InvalidReading(raw, "missing_field", "give district, or lat and lon")
        found = self._locate(sent.lat, sent.lon)
        if found is None:
            detail = f"position {sent.lat},{sent.lon} is in no district of the city"
            raise InvalidReading(raw, "unknown_district", detail)
        return found

    def _time(self, sent: _Sent, received_at: float, raw: bytes) -> float:
        if sent.time is None:
            return received_at
        if isinstance(sent.time, datetime):
            if sent.time.tzinfo is None:
                detail = f"time {sent.time.isoformat()!r} has no time zone (send UTC, e.g. ...Z)"
                raise InvalidReading(raw, "bad_timestamp", detail)
            ts = sent.time.timestamp()
        else:
            ts = float(sent.time)
        if ts > received_at + self._max_future_s:
            detail = f"time is {ts - received_at:.0f} s ahead of the clock"
            raise InvalidReading(raw, "future_timestamp", detail)
        return ts


def _digest(*parts: object) -> str:
    text = "\x1f".join(str(part) for part in parts)
    return "r-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def encode_report(report: Report) -> bytes:
    """The report's record on the ``reports`` topic (JSON)."""
    return orjson.dumps(report.model_dump(mode="json"))


def decode_report(value: bytes) -> Report:
    """A report from its record (ValueError if it is not one)."""
    try:
        return Report.model_validate(orjson.loads(value))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        msg = f"not a report record: {exc}"
        raise ValueError(msg) from None
