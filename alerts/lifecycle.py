"""Incidents and their lifecycle, event-sourced: every change is an event, an incident their fold.

People act through :func:`act`, which refuses what the incident's state does not allow and
returns the new incident and the :class:`IncidentEvent` to store and publish::

    incident, event = act(incident, "acknowledge", actor="ana", at=now)
    incident, event = act(incident, "dispatch", actor="ana", at=now, team="pump-crew-3")
    incident, event = act(incident, "resolve", actor="ana", at=now, outcome="false_alarm",
                          comment="gauge flushed by the cleaning crew")
    event.id                      # "inc-5f0c...:000004": incident id + sequence number
    incident = replay(stored_events)          # the same incident, rebuilt from its events
    incident = apply(incident, event)         # one event; a sequence already seen changes nothing

States and what people may do (``comment`` is possible in every state)::

    open --acknowledge--> acknowledged --dispatch--> dispatched --resolve--> resolved
    acknowledged --resolve--> resolved      dispatched --dispatch--> dispatched (another team)
    resolved --close--> closed              resolved, closed --reopen--> open
    open, acknowledged, dispatched --merge--> closed (a duplicate of another incident)

Handing over, while the incident is active (open, acknowledged or dispatched), changes no state:
``assign`` names the person on it (``target``), ``transfer`` moves it from one department
(``from_department``, default its owner) to another (``target``: the new owner; the person
assigned is cleared), ``add_department`` routes it to one more (``target``, with a reason in
``comment``); ``link`` and ``merge`` name another incident (``target``).

The system writes five more actions: ``open`` (the first alert, or a person's report: see
:mod:`alerts.hand_opened`), ``alert`` (one more alert joined,
see :mod:`alerts.incidents`), ``escalate`` (see :mod:`alerts.escalation`), ``restore`` (the
event log that held the incident was lost and the flow took it up again from history, see
:mod:`alerts.reconcile`; it changes nothing but ``updated_at``) and ``notify`` (a notification
sent, delivered or failed, see :mod:`alerts.notify_rules`; it changes nothing either);
``suppress`` and ``unsuppress`` (a maintenance window added or ended early covers it, see
:mod:`alerts.suppressions`) change nothing either. Every event carries
the incident's departments after it, so it can be routed without looking the incident up.
Incidents and events are frozen, picklable, and JSON-ready through ``to_record``/``from_record``
(times ISO 8601 UTC, as on the wire).

An incident has a place: ``districts``, every district its alerts came from (its own first), and
when its alerts carry positions (``lat``/``lon`` in their events' details) a circle around them
(``lat``, ``lon``, ``radius_m``; :func:`alerts.spatial.grow`). Unlocated: ``lat`` is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from alerts.spatial import grow
from models.errors import CityheartError
from models.timefmt import from_iso, iso
from settings.incidents import severity_rank

__all__ = [
    "ACTIONS",
    "OUTCOMES",
    "ALERT_IDS_KEPT",
    "STATES",
    "SYSTEM_ACTIONS",
    "HANDOVER_ACTIONS",
    "EventGap",
    "Incident",
    "IncidentError",
    "IncidentEvent",
    "InvalidAction",
    "InvalidTransition",
    "act",
    "apply",
    "available_actions",
    "event_id",
    "replay",
    "restore_fields",
    "state_after",
    "to_epoch",
]

STATES = ("open", "acknowledged", "dispatched", "resolved", "closed")
ALERT_IDS_KEPT = 200
"""An incident keeps the ids of its latest alerts only (``alert_count`` counts them all): enough
to recognise an alert read again after a restart, and its records stay small however long it
lasts."""
HANDOVER_ACTIONS = ("assign", "transfer", "add_department", "link", "merge")
ACTIONS = ("acknowledge", "dispatch", "comment", "resolve", "close", "reopen", *HANDOVER_ACTIONS)
SYSTEM_ACTIONS = ("open", "alert", "escalate", "restore", "notify")
OUTCOMES = ("confirmed", "false_alarm")
_ACTIVE = ("open", "acknowledged", "dispatched")
_TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "acknowledge": (("open",), "acknowledged"),
    "dispatch": (("acknowledged", "dispatched"), "dispatched"),
    "comment": (STATES, None),
    "resolve": (("acknowledged", "dispatched"), "resolved"),
    "close": (("resolved",), "closed"),
    "reopen": (("resolved", "closed"), "open"),
    "assign": (_ACTIVE, None),
    "transfer": (_ACTIVE, None),
    "add_department": (_ACTIVE, None),
    "link": (_ACTIVE, None),
    "merge": (_ACTIVE, "closed"),
}


class IncidentError(CityheartError):
    """Base of the errors about one incident; ``incident_id`` names it."""

    def __init__(self, incident_id: str, reason: str) -> None:
        super().__init__(incident_id, reason)
        self.incident_id = incident_id
        self.reason = reason

    def __str__(self) -> str:
        return f"incident {self.incident_id!r}: {self.reason}"


class InvalidAction(IncidentError):
    """Raised when an action is unknown or lacks what it needs (a team, an outcome, a text)."""


class InvalidTransition(InvalidAction):
    """Raised when an action is not possible in the incident's state."""

    def __init__(self, incident_id: str, state: str, action: str) -> None:
        possible = ", ".join(a for a in ACTIONS if state in _TRANSITIONS[a][0])
        super().__init__(incident_id, f"cannot {action} it (possible now: {possible})")
        self.state = state
        self.action = action

    def __str__(self) -> str:
        return f"incident {self.incident_id!r} is {self.state}: {self.reason}"


class EventGap(IncidentError):
    """Raised when an event does not follow the last one applied (events were missed)."""


def event_id(incident_id: str, sequence: int) -> str:
    """The deterministic id of an incident's ``sequence``-th event."""
    return f"{incident_id}:{sequence:06d}"


def to_epoch(value: float | str | datetime | None) -> float | None:
    """Epoch seconds of a number, an ISO 8601 string with a zone, or an aware datetime."""
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, str):
        return from_iso(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One change to an incident: who did what when, with an optional comment."""

    incident_id: str
    sequence: int
    ts: float
    actor: str
    action: str
    comment: str | None = None
    departments: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``<incident id>:<sequence>``: the same event always has the same id."""
        return event_id(self.incident_id, self.sequence)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict: id, incident_id, sequence, ts (ISO), actor, action, comment,
        departments, details."""
        return {"id": self.id, "incident_id": self.incident_id, "sequence": self.sequence,
                "ts": iso(self.ts), "actor": self.actor, "action": self.action,
                "comment": self.comment, "departments": list(self.departments),
                "details": dict(self.details)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> IncidentEvent:
        """The event of a record (``to_record``'s, or a stored row: a missing ``sequence`` is
        read from the id, missing ``departments`` from ``details``)."""
        details = dict(record.get("details") or {})
        sequence = record.get("sequence") or int(str(record["id"]).rsplit(":", 1)[1])
        departments = record.get("departments", details.get("departments", ()))
        return cls(incident_id=record["incident_id"], sequence=int(sequence),
                   ts=float(to_epoch(record["ts"])),  # type: ignore[arg-type]
                   actor=record["actor"], action=record["action"], comment=record.get("comment"),
                   departments=tuple(departments), details=details)


@dataclass(frozen=True, slots=True)
class Incident:
    """What an incident is after its events; ``sequence`` is the last event applied."""

    id: str
    district: str
    rule: str
    kind: str
    title: str
    state: str = "open"
    severity: str = "warning"
    departments: tuple[str, ...] = ()
    opened_at: float = 0.0
    cycle_started_at: float = 0.0      # opened_at, or the last reopen
    updated_at: float = 0.0
    first_alert_at: float = 0.0
    last_alert_at: float = 0.0
    alert_count: int = 0
    alert_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()
    correlations: tuple[str, ...] = ()
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    teams: tuple[str, ...] = ()
    resolved_at: float | None = None
    outcome: str | None = None
    closed_at: float | None = None
    escalation_level: int = 0
    sequence: int = 0
    # (after ``sequence``: fields added later go last, so a snapshot pickled before them
    # never has its values read into the wrong fields)
    districts: tuple[str, ...] = ()    # the districts its alerts (or its report) touch
    lat: float | None = None           # its place: where it was reported, or the centre of the
    lon: float | None = None           # circle holding its alerts' positions (WGS84 degrees)
    radius_m: float = 0.0              # that circle's radius
    assignee: str | None = None
    reporter: str | None = None        # who reported it (an incident opened by a person)
    description: str | None = None
    links: tuple[str, ...] = ()        # related incidents (link, merge)
    merged_into: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in fields(self)}

    def __setstate__(self, state: Any) -> None:
        restore_fields(self, state)

    @property
    def active(self) -> bool:
        """Whether the incident still needs work (not resolved or closed)."""
        return self.state not in ("resolved", "closed")

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict of every field; times ISO 8601 UTC, tuples as lists."""
        record: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name.endswith("_at") and value is not None:
                value = iso(value)
            record[spec.name] = list(value) if isinstance(value, tuple) else value
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Incident:
        """The incident of a :meth:`to_record` dict."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if spec.name not in record:
                continue
            value = record[spec.name]
            if spec.name.endswith("_at"):
                value = to_epoch(value)
            values[spec.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


def restore_fields(obj: Any, state: Any) -> None:
    """Set the dataclass ``obj``'s fields from a pickled ``state`` (a list in field order, a
    dict, or a ``(dict, slots dict)`` pair); a field the state lacks (added since it was
    pickled, as a recovery snapshot from before an upgrade) gets its default."""
    if isinstance(state, tuple):
        state = {**(state[0] or {}), **(state[1] or {})}
    specs = fields(obj)
    values = dict(zip((f.name for f in specs), state, strict=False)) if isinstance(
        state, list) else dict(state)
    for spec in specs:
        if spec.name in values:
            value = values[spec.name]
        elif spec.default is not MISSING:
            value = spec.default
        elif spec.default_factory is not MISSING:
            value = spec.default_factory()
        else:
            msg = f"a pickled {type(obj).__name__} lacks field {spec.name!r}"
            raise ValueError(msg)
        object.__setattr__(obj, spec.name, value)


def state_after(action: str) -> str | None:
    """The state an action leads to (None: it leaves the state as it is)."""
    return _TRANSITIONS[action][1] if action in _TRANSITIONS else None


def available_actions(incident: Incident) -> tuple[str, ...]:
    """The actions people may take on ``incident`` in its state."""
    return tuple(a for a in ACTIONS if incident.state in _TRANSITIONS[a][0])


def act(
    incident: Incident, action: str, *, actor: str, at: float, comment: str | None = None,
    team: str | None = None, outcome: str | None = None, target: str | None = None,
    from_department: str | None = None,
) -> tuple[Incident, IncidentEvent]:
    """Do ``action`` as ``actor`` at ``at``: (the incident after it, the event to store).

    Raises :class:`InvalidTransition` when the state does not allow the action and
    :class:`InvalidAction` when it is unknown or lacks its argument: ``dispatch`` a ``team``,
    ``resolve`` an ``outcome`` (``confirmed`` or ``false_alarm``), ``comment`` a text, the
    handover actions a ``target`` (see the module doc). A resolve event also names the
    incident's alert rules and detectors, so that whoever learns from false alarms needs
    nothing else.
    """
    if action not in _TRANSITIONS:
        raise InvalidAction(incident.id, f"unknown action {action!r}; one of {list(ACTIONS)}")
    if incident.state not in _TRANSITIONS[action][0]:
        raise InvalidTransition(incident.id, incident.state, action)
    if not actor:
        raise InvalidAction(incident.id, f"{action} needs an actor, got {actor!r}")
    details: dict[str, Any] = {}
    departments = incident.departments
    if action == "comment" and not (comment and comment.strip()):
        raise InvalidAction(incident.id, f"a comment needs a text, got {comment!r}")
    if action == "dispatch":
        if not team:
            raise InvalidAction(incident.id, f"dispatch needs a team or unit, got {team!r}")
        details["team"] = team
    if action == "resolve":
        if outcome not in OUTCOMES:
            reason = f"resolve needs an outcome, one of {list(OUTCOMES)}, got {outcome!r}"
            raise InvalidAction(incident.id, reason)
        details.update(outcome=outcome, rules=list(incident.rules),
                       detectors=list(incident.detectors))
    if action in HANDOVER_ACTIONS:
        details, departments = _handover(incident, action, target, from_department, comment)
    event = IncidentEvent(incident.id, incident.sequence + 1, at, actor, action, comment or None,
                          departments, details)
    return apply(incident, event), event


_TARGETS = {"assign": "a person (--to)", "transfer": "a department", "add_department":
            "a department", "link": "another incident's id", "merge": "another incident's id"}


def _handover(
    incident: Incident, action: str, target: str | None, from_department: str | None,
    comment: str | None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The details and departments after a handover action (see the module doc)."""
    target = (target or "").strip()
    if not target:
        raise InvalidAction(incident.id, f"{action} needs {_TARGETS[action]}, got {target!r}")
    departments = incident.departments
    if action == "assign":
        return {"assignee": target, "previous": incident.assignee}, departments
    if action in ("link", "merge"):
        if target == incident.id:
            raise InvalidAction(incident.id, f"cannot {action} an incident with itself")
        return ({"incident": target} if action == "link" else {"into": target}), departments
    if action == "add_department":
        if target in departments:
            reason = f"it is routed to {target!r} already ({list(departments)})"
            raise InvalidAction(incident.id, reason)
        if not (comment and comment.strip()):
            raise InvalidAction(incident.id, "add_department needs a reason (a comment)")
        return {"department": target}, (*departments, target)
    leaving = from_department or (departments[0] if departments else None)
    if leaving is not None and leaving not in departments:
        reason = f"it is not routed to {leaving!r} (it is routed to {list(departments)})"
        raise InvalidAction(incident.id, reason)
    if target == leaving or (departments[:1] == (target,) and leaving is None):
        raise InvalidAction(incident.id, f"it is with department {target!r} already")
    after = (target, *(d for d in departments if d not in (target, leaving)))
    return {"department": target, "from": leaving}, after


def apply(incident: Incident | None, event: IncidentEvent) -> Incident:
    """The incident after ``event``; unchanged if the event's sequence was applied already.

    ``incident`` is None only for the ``open`` event. Raises :class:`EventGap` when events
    between the last applied and this one are missing.
    """
    if incident is None:
        if event.action != "open" or event.sequence != 1:
            reason = f"the first event must be 'open' number 1, got {event.action!r} {event.id}"
            raise EventGap(event.incident_id, reason)
        return _opened(event)
    if event.incident_id != incident.id:
        raise EventGap(incident.id, f"event {event.id} belongs to another incident")
    if event.sequence <= incident.sequence:
        return incident
    if event.sequence != incident.sequence + 1:
        reason = f"expected event {incident.sequence + 1}, got {event.sequence}: events missing"
        raise EventGap(incident.id, reason)
    departments = incident.departments + tuple(
        d for d in event.departments if d not in incident.departments
    )
    if event.action == "transfer":  # the one event that takes a department away
        departments = tuple(event.departments)
    base = replace(incident, sequence=event.sequence, departments=departments,
                   updated_at=max(incident.updated_at, event.ts))
    return _APPLY.get(event.action, _unknown)(base, event)


def replay(events: Iterable[IncidentEvent]) -> Incident:
    """The incident its events (in any order, duplicates allowed) make."""
    incident: Incident | None = None
    for event in sorted(events, key=lambda e: e.sequence):
        incident = apply(incident, event)
    if incident is None:
        msg = "no events to replay: an incident starts with its 'open' event"
        raise ValueError(msg)
    return incident


def _opened(event: IncidentEvent) -> Incident:
    d = event.details
    blank = Incident(
        id=event.incident_id, district=d["district"], rule=d["rule"], kind=d["kind"],
        title=d.get("title") or f"{d['kind']} in {d['district']}", severity=d["severity"],
        departments=tuple(event.departments), opened_at=event.ts, cycle_started_at=event.ts,
        updated_at=event.ts, first_alert_at=event.ts, last_alert_at=event.ts, sequence=1,
        districts=(d["district"],),
    )
    if d.get("source") == "report":  # a person's report: no alert behind it
        return replace(blank, kinds=(d["kind"],), rules=(d["rule"],), reporter=d.get("reporter"),
                       description=d.get("description"), lat=d.get("lat"), lon=d.get("lon"))
    return _alert(blank, event)


def _add(values: tuple[str, ...], value: str | None) -> tuple[str, ...]:
    return values if value is None or value in values else (*values, value)


def _alert(i: Incident, e: IncidentEvent) -> Incident:
    d = e.details
    severity = max(i.severity, d["severity"], key=severity_rank)
    return replace(
        i, severity=severity, alert_count=i.alert_count + 1,
        alert_ids=_add(i.alert_ids, d["id"])[-ALERT_IDS_KEPT:],
        kinds=_add(i.kinds, d["kind"]), rules=_add(i.rules, d["rule"]),
        detectors=_add(i.detectors, d.get("detector")),
        correlations=_add(i.correlations, d.get("correlation")),
        first_alert_at=min(i.first_alert_at, e.ts), last_alert_at=max(i.last_alert_at, e.ts),
        title=d.get("title") or i.title,
        districts=_add(i.districts, d.get("district")), **_placed(i, d),
    )


def _placed(i: Incident, details: Mapping[str, Any]) -> dict[str, Any]:
    """The incident's circle grown to hold the alert's position, if the alert has one."""
    lat, lon = details.get("lat"), details.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return {}
    before = None if i.lat is None or i.lon is None else (i.lat, i.lon, i.radius_m)
    lat, lon, radius = grow(before, (float(lat), float(lon)))
    return {"lat": lat, "lon": lon, "radius_m": radius}


def _unknown(i: Incident, e: IncidentEvent) -> Incident:
    raise InvalidAction(i.id, f"event {e.id} has unknown action {e.action!r}")


_APPLY: dict[str, Callable[[Incident, IncidentEvent], Incident]] = {
    "alert": _alert,
    "escalate": lambda i, e: replace(i, severity=e.details["severity"],
                                     escalation_level=int(e.details["level"])),
    "acknowledge": lambda i, e: replace(i, state="acknowledged", acknowledged_at=e.ts,
                                        acknowledged_by=e.actor),
    "dispatch": lambda i, e: replace(i, state="dispatched", teams=_add(i.teams, e.details["team"])),
    "comment": lambda i, e: i,
    "restore": lambda i, e: i,
    "notify": lambda i, e: i,
    "resolve": lambda i, e: replace(i, state="resolved", resolved_at=e.ts,
                                    outcome=e.details["outcome"]),
    "close": lambda i, e: replace(i, state="closed", closed_at=e.ts),
    "reopen": lambda i, e: replace(
        i, state="open", cycle_started_at=e.ts, acknowledged_at=None, acknowledged_by=None,
        teams=(), resolved_at=None, outcome=None, closed_at=None, escalation_level=0,
        merged_into=None,
    ),
    "suppress": lambda i, e: i,      # a maintenance window covers it (alerts.suppressions)
    "unsuppress": lambda i, e: i,
    "assign": lambda i, e: replace(i, assignee=e.details["assignee"]),
    "transfer": lambda i, e: replace(i, assignee=None),
    "add_department": lambda i, e: i,
    "link": lambda i, e: replace(i, links=_add(i.links, e.details["incident"])),
    "merge": lambda i, e: replace(i, state="closed", closed_at=e.ts,
                                  merged_into=e.details["into"],
                                  links=_add(i.links, e.details["into"])),
}
