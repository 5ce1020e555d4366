"""Incidents people open by hand ("New incident", ``POST /api/incidents``, ``cityheart
incident create``), from a phone call or the field: pure, time injected.

This is not :mod:`models.reports`. A report (:class:`models.reports.Report`, ``POST /reports``
or the dashboard's *File a report*) is an observation that goes to the ``reports`` topic and
becomes an alert that may join or open an incident (:mod:`alerts.report_alerts`). A
:class:`HandOpened` is a person's decision that there is an incident: it opens one at once.

It names what (``kind``, ``title``, ``severity``, an optional ``description``), where (a
``district``, and the ``lat``/``lon`` it was seen at if known) and who reported it. The flow
opens it like an alert opens an incident: routed by ``incidents.routing`` (its rule is
:data:`HAND_OPENED_RULE`), with an ``open`` event whose actor is the person who entered it::

    entered = HandOpened.from_record({"kind": "water_level", "title": "Water over the quay",
                                      "severity": "critical", "district": "harbour",
                                      "reporter": "caller: harbour master"})
    incident, event = open_by_hand(entered, incident_id=hand_opened_incident_id(command_id),
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

__all__ = ["HAND_OPENED_RULE", "HandOpened", "InvalidHandOpened", "hand_opened_incident_id",
           "open_by_hand"]

HAND_OPENED_RULE = "report"
"""The rule name of incidents people open by hand (routing rules may match it in ``rules``;
the value stays ``report`` so configured routes keep matching)."""

_TEXT_LIMIT = 4000


class InvalidHandOpened(CityheartError):
    """Raised when a hand-opened incident's request lacks a field or has a wrong value;
    ``reason`` names which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid report: {self.reason}"


@dataclass(frozen=True, slots=True)
class HandOpened:
    """What a person entered to open an incident: what, where, how bad, who reported it."""

    kind: str
    title: str
    severity: str
    district: str
    description: str | None = None
    lat: float | None = None
    lon: float | None = None
    reporter: str | None = None

    @classmethod
    def from_record(cls, record: Any) -> HandOpened:
        """The report of a JSON object; :class:`InvalidHandOpened` naming the field if wrong."""
        if not isinstance(record, Mapping):
            msg = f"a report must be a JSON object, got {type(record).__name__}"
            raise InvalidHandOpened(msg)
        text = {name: _text(record, name, required=name in ("kind", "title", "severity",
                                                             "district"))
                for name in ("kind", "title", "severity", "district", "description", "reporter")}
        if text["severity"] not in SEVERITIES:
            msg = f"severity {text['severity']!r} is not one of {list(SEVERITIES)}"
            raise InvalidHandOpened(msg)
        lat, lon = _degrees(record, "lat", 90.0), _degrees(record, "lon", 180.0)
        if (lat is None) != (lon is None):
            msg = f"a position needs both lat and lon, got lat={lat!r} lon={lon!r}"
            raise InvalidHandOpened(msg)
        return cls(kind=str(text["kind"]), title=str(text["title"]),
                   severity=str(text["severity"]), district=str(text["district"]),
                   description=text["description"], lat=lat, lon=lon,
                   reporter=text["reporter"])

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict of every field (None where not given)."""
        return {"kind": self.kind, "title": self.title, "severity": self.severity,
                "district": self.district, "description": self.description, "lat": self.lat,
                "lon": self.lon, "reporter": self.reporter}


def hand_opened_incident_id(command_id: str) -> str:
    """The id of the incident the command ``command_id`` opens (``inc-`` and 16 hex digits)."""
    text = f"{HAND_OPENED_RULE}|{command_id}"
    return "inc-" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def open_by_hand(
    report: HandOpened, *, incident_id: str, actor: str, at: float, departments: tuple[str, ...],
) -> tuple[Incident, IncidentEvent]:
    """The incident ``report`` opens and its ``open`` event (by ``actor``, at ``at``)."""
    details = {"source": HAND_OPENED_RULE, "rule": HAND_OPENED_RULE, **report.to_record()}
    event = IncidentEvent(incident_id, 1, at, actor, "open", None, departments, details)
    return apply(None, event), event


def _text(record: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        msg = f"{name} must be a string, got {value!r}"
        raise InvalidHandOpened(msg)
    value = (value or "").strip()[:_TEXT_LIMIT] or None
    if required and value is None:
        msg = f"a report needs a {name}, got {record.get(name)!r}"
        raise InvalidHandOpened(msg)
    return value


def _degrees(record: Mapping[str, Any], name: str, limit: float) -> float | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or abs(value) > limit:
        msg = f"{name} {value!r} is not a number of degrees within ±{limit:g}"
        raise InvalidHandOpened(msg)
    return float(value)
