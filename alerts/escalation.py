"""Escalation of unacknowledged incidents, and suppression (maintenance) windows; time injected.

An incident still ``open`` (not acknowledged) when its owner department's escalation step is due
is escalated: one ``escalate`` event per step, which raises the severity one step (warning ->
critical -> emergency, unless the step says ``raise_severity: false``), names who to notify,
and may route the incident to more departments (the raised severity can match more rules).
Step n is due ``after_s`` seconds after the incident was opened or reopened (default: n x the
department's ``sla_ack_s``); with ``escalation_repeat`` the ladder runs again from its first step
(the level keeps counting). Nothing reads a clock: the caller passes ``now``::

    incident, events = escalate(incident, settings.incidents, now=now)
    for event in events:                      # event.details: level, name, notify, severity
        notify(event.details["notify"], event)
    next_due(incident, settings.incidents)    # when to look again (None: nothing pending)

Suppression windows silence a district or devices (optionally some kinds) from ``start`` to
``end``: alerts there open no incident (see :mod:`alerts.incidents`) and incidents there do not
escalate while the window lasts; what is due fires when it ends::

    suppression_for(windows, district="harbour", at=ts, device="wl-7", kind="water_level")
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

from alerts.lifecycle import Incident, IncidentEvent, apply
from alerts.routing import merge, route_incident
from models.timefmt import iso
from settings.incidents import (
    SEVERITIES,
    Department,
    IncidentSettings,
    SuppressionWindow,
    severity_rank,
)

__all__ = [
    "SYSTEM_ACTOR",
    "due_steps",
    "escalate",
    "next_due",
    "owner",
    "raised",
    "suppression_for",
]

SYSTEM_ACTOR = "system"


def suppression_for(
    windows: Iterable[SuppressionWindow], *, district: str, at: float,
    device: str | None = None, kind: str | None = None, devices: Collection[str] = (),
    kinds: Collection[str] = (),
) -> SuppressionWindow | None:
    """The first window covering ``at`` for this district or device(s) and kind(s), if any."""
    all_devices = {*devices, *([device] if device else [])}
    all_kinds = {*kinds, *([kind] if kind else [])}
    for window in windows:
        if not window.start_ts <= at < window.end_ts:
            continue
        if window.kinds and not all_kinds.intersection(window.kinds):
            continue
        if district in window.districts or all_devices.intersection(window.devices):
            return window
    return None


def owner(incident: Incident, settings: IncidentSettings) -> Department | None:
    """The department whose SLA and ladder apply: the incident's first configured one."""
    departments = settings.departments_by_id()
    for department_id in incident.departments:
        if department_id in departments:
            return departments[department_id]
    return None


def raised(severity: str) -> str:
    """One step more severe, at most the top of SEVERITIES."""
    return SEVERITIES[min(severity_rank(severity) + 1, len(SEVERITIES) - 1)]


def due_steps(incident: Incident, department: Department, *, now: float) -> list[int]:
    """The escalation steps (1-based) due at ``now`` and not yet fired, in order."""
    if incident.state != "open":
        return []
    return [
        number
        for number, after_s in enumerate(department.escalation_after_s(), start=1)
        if number > incident.escalation_level and incident.cycle_started_at + after_s <= now
    ]


def next_due(incident: Incident, settings: IncidentSettings) -> float | None:
    """When the next escalation step of ``incident`` falls due (None: none pending)."""
    department = owner(incident, settings)
    if incident.state != "open" or department is None:
        return None
    times = department.escalation_after_s()
    if incident.escalation_level >= len(times):
        return None
    return incident.cycle_started_at + times[incident.escalation_level]


def escalate(
    incident: Incident, settings: IncidentSettings, *, now: float,
    windows: Iterable[SuppressionWindow] = (),
) -> tuple[Incident, list[IncidentEvent]]:
    """Fire the steps due at ``now``: (the incident after them, their ``escalate`` events).

    Nothing fires when the incident is acknowledged (or further), its owner has no ladder,
    or a suppression window (config.yaml's, or one of ``windows`` added at run time) covers
    its district or detectors at ``now``.
    """
    department = owner(incident, settings)
    if department is None:
        return incident, []
    if suppression_for((*settings.suppression, *windows), district=incident.district, at=now,
                       devices=incident.detectors, kinds=incident.kinds) is not None:
        return incident, []
    events: list[IncidentEvent] = []
    for number in due_steps(incident, department, now=now):
        event = _step_event(incident, settings, department, number, now)
        incident = apply(incident, event)
        events.append(event)
    return incident, events


def _step_event(
    incident: Incident, settings: IncidentSettings, department: Department, number: int,
    now: float,
) -> IncidentEvent:
    step = department.escalation_step(number)
    severity = raised(incident.severity) if step.raise_severity else incident.severity
    departments = route_incident(settings.routing, replace(incident, severity=severity))
    due_at = incident.cycle_started_at + department.escalation_after_s()[number - 1]
    details = {
        "level": number, "name": step.name, "notify": list(step.notify),
        "department": department.id, "severity_from": incident.severity, "severity": severity,
        "due_at": iso(due_at), "unacknowledged_s": round(now - incident.cycle_started_at, 3),
    }
    return IncidentEvent(
        incident.id, incident.sequence + 1, now, SYSTEM_ACTOR, "escalate", None,
        merge(incident.departments, departments), details,
    )
