"""What the city flow's steps hand each other: typed domain events, never bytes.

The stateful steps (``district_vitals``, ``city_vitals``, ``incidents``) and the parser emit
these; :mod:`flows.topics` is the one place that turns each into the records of its topic, right
before the sinks. Every event is frozen and picklable (Bytewax moves them between workers).

:class:`WindowClosed`
    a closed window's vital signs (``vitals`` topic).
:class:`IndicatorUpdate`
    an indicator record of a district or the city (``vitals`` topic).
:class:`AlertRaised`
    an alert a rule fired, its ``departments`` set by routing before it is published
    (``alerts`` topic, and the incident step).
:class:`Refused`
    a ``readings`` message the flow's parser refused (dead-letter topic).
:class:`IncidentChanged`
    an incident event and the incident after it (``incidents`` topic and each department's
    dispatch queue).
:class:`~alerts.commands.CommandResult`
    the answer to a person's command (``command_results`` topic).

District facts for the city step (:class:`~models.vitals.district.DistrictWindow`,
:class:`~models.vitals.district.DistrictProgress`), rejections
(:class:`~models.vitals.records.Rejection`) and detector feedback stay the models' own types.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.lifecycle import Incident, IncidentEvent
from alerts.rules import Alert
from models.vitals.district import DistrictProgress, DistrictWindow
from models.vitals.records import IndicatorRecord
from models.windows import Window

__all__ = [
    "CITY_FACTS",
    "AlertRaised",
    "IncidentChanged",
    "IndicatorUpdate",
    "Refused",
    "WindowClosed",
]

CITY_FACTS = (DistrictWindow, DistrictProgress)
"""The types a district hands the city step."""


@dataclass(frozen=True, slots=True)
class WindowClosed:
    """A closed window (its readings' unit, ``late`` readings that missed it) at ``emitted_at``."""

    window: Window
    unit: str
    late: int
    emitted_at: float


@dataclass(frozen=True, slots=True)
class IndicatorUpdate:
    """An indicator record, computed at ``emitted_at``."""

    record: IndicatorRecord
    emitted_at: float


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """An alert fired at ``emitted_at`` (routed: ``alert.departments`` set by the flow)."""

    alert: Alert
    emitted_at: float


@dataclass(frozen=True, slots=True)
class Refused:
    """A ``readings`` message the flow refused: its key and original bytes, why (``reason``,
    ``detail``), the MQTT topic its headers name (empty if none) and when."""

    key: bytes | None
    payload: bytes
    reason: str
    detail: str
    mqtt_topic: bytes
    at: float


@dataclass(frozen=True, slots=True)
class IncidentChanged:
    """An incident event and the incident after it."""

    event: IncidentEvent
    incident: Incident
