"""Incidents people open by hand, from a phone call or a field report: pure, time injected.

A report names what (``kind``, ``title``, ``severity``, an optional ``description``), where (a
``district``, and the ``lat``/``lon`` it was seen at if known) and who reported it. The flow
opens it like an alert opens an incident: routed by ``incidents.routing`` (its rule is
:data:`REPORT_RULE`), with an ``open`` event whose actor is the person who entered it::

    report = Report.from_record({"kind": "water_level", "title": "Water over the quay",
                                 "severity": "critical", "district": "harbour",
                                 "reporter": "caller: harbour master"})
    incident, event = open_report(report, incident_id=report_incident_id(command_id),
                                  actor="olga", at=now, departments=("water-authority",))

The incident's id hashes the id of the command that asked for it, so reading the commands
again (a restart) opens the same incident, and no other command can make the same id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alerts.lifecycle import Incident, IncidentEvent, apply
from models.errors import CityheartError
from settings.incidents import SEVERITIES

__all__ = ["REPORT_RULE", "InvalidReport", "Report", "open_report", "report_incident_id"]

REPORT_RULE = "report"
"""The rule name of incidents people open (routing rules may match it in ``rules``)."""

_TEXT_LIMIT = 4000


class InvalidReport(CityheartError):
    """Raised when a report lacks a field or has a wrong value; ``reason`` names which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid report: {self.reason}"


@dataclass(frozen=True, slots=True)
class Report:
    """What a person reported: what, where, how bad, who said so."""

    kind: str
    title: str
    severity: str
    district: str
    description: str | None = None
    lat: float | None = None
    lon: float | None = None
    reporter: str | None = None

    @classmethod
    def from_record(cls, record: Any) -> Report:
        """The report of a JSON object; :class:`InvalidReport` naming the field if wrong."""
        if not isinstance(record, Mapping):
            msg = f"a report must be a JSON object, got {type(record).__name__}"
            raise InvalidReport(msg)
        text = {name: _text(record, name, required=name in ("kind", "title", "severity",
                                                             "district"))
                for name in ("kind", "title", "severity", "district", "description", "reporter")}
        if text["severity"] not in SEVERITIES:
            msg = f"severity {text['severity']!r} is not one of {list(SEVERITIES)}"
            raise InvalidReport(msg)
        lat, lon = _degrees(record, "lat", 90.0), _degrees(record, "lon", 180.0)
        if (lat is None) != (lon is None):
            msg = f"a position needs both lat and lon, got lat={lat!r} lon={lon!r}"
            raise InvalidReport(msg)
        return cls(kind=str(text["kind"]), title=str(text["title"]),
                   severity=str(text["severity"]), district=str(text["district"]),
                   description=text["description"], lat=lat, lon=lon,
                   reporter=text["reporter"])

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict of every field (None where not given)."""
        return {"kind": self.kind, "title": self.title, "severity": self.severity,
                "district": self.district, "description": self.description, "lat": self.lat,
                "lon": self.lon, "reporter": self.reporter}


def report_incident_id(command_id: str) -> str:
    """The id of the incident the command ``command_id`` opens (``inc-`` and 16 hex digits)."""
    text = f"{REPORT_RULE}|{command_id}"
    return "inc-" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def open_report(
    report: Report, *, incident_id: str, actor: str, at: float, departments: tuple[str, ...],
) -> tuple[Incident, IncidentEvent]:
    """The incident ``report`` opens and its ``open`` event (by ``actor``, at ``at``)."""
    details = {"source": REPORT_RULE, "rule": REPORT_RULE, **report.to_record()}
    event = IncidentEvent(incident_id, 1, at, actor, "open", None, departments, details)
    return apply(None, event), event


def _text(record: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        msg = f"{name} must be a string, got {value!r}"
        raise InvalidReport(msg)
    value = (value or "").strip()[:_TEXT_LIMIT] or None
    if required and value is None:
        msg = f"a report needs a {name}, got {record.get(name)!r}"
        raise InvalidReport(msg)
    return value


def _degrees(record: Mapping[str, Any], name: str, limit: float) -> float | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or abs(value) > limit:
        msg = f"{name} {value!r} is not a number of degrees within ±{limit:g}"
        raise InvalidReport(msg)
    return float(value)
