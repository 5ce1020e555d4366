"""Maintenance windows and suppressions added at run time, as commands to the flow: pure.

config.yaml's ``incidents.suppression`` windows are fixed at start; these come and go while the
city runs (``cityheart suppress add|list|end``, ``/api/suppressions``). Like every other change
they are commands on the ``commands`` topic, one per district the window covers, so the flow
(the one writer) knows them in each district's state, and a replay of the commands knows them
again::

    window = window_from_record({"id": "pump-works", "districts": ["harbour"],
                                 "start": "...", "end": "...", "reason": "pump maintenance"})
    events = add_window(state, window, actor="olga", at=now)     # "suppress" events
    events = end_window(state, "pump-works", actor="olga", at=now)   # "unsuppress" events
    active_windows(state, now=now)                                # what still silences

While a window lasts, alerts it covers open no incident and join none, and incidents it covers
do not escalate (:mod:`alerts.escalation`). Every active incident a window covers when it is
added gets a ``suppress`` event in its timeline (the window, its end and reason, by the person
who added it), and an ``unsuppress`` event when the window is ended early. Only operators manage
windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from alerts.lifecycle import Incident, IncidentEvent, apply
from models.errors import CityheartError
from models.timefmt import iso
from settings.incidents import SuppressionWindow

if TYPE_CHECKING:
    from alerts.incidents import GroupingState

__all__ = [
    "SUPPRESSION_ACTIONS",
    "InvalidWindow",
    "active_windows",
    "add_window",
    "covers",
    "end_window",
    "window_from_record",
    "window_record",
]

SUPPRESSION_ACTIONS = ("suppress", "end_suppression", "list_suppressions")
"""The commands about windows (their ``incident_id`` is ``suppression:<window id>``)."""


class InvalidWindow(CityheartError):
    """Raised when a window record lacks a field or has a wrong value; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid suppression window: {self.reason}"


def window_from_record(record: Any) -> SuppressionWindow:
    """The window of a JSON object (as config.yaml's); :class:`InvalidWindow` naming the field."""
    if not isinstance(record, Mapping):
        msg = f"a window must be a JSON object, got {type(record).__name__}"
        raise InvalidWindow(msg)
    try:
        return SuppressionWindow.model_validate(dict(record))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'window'}: {e['msg']}"
                             for e in exc.errors())
        raise InvalidWindow(problems) from None


def window_record(window: SuppressionWindow) -> dict[str, Any]:
    """JSON-ready dict of a window (times ISO 8601 UTC)."""
    return {"id": window.id, "districts": list(window.districts),
            "devices": list(window.devices), "kinds": list(window.kinds),
            "start": iso(window.start_ts), "end": iso(window.end_ts), "reason": window.reason}


def covers(window: SuppressionWindow, incident: Incident) -> bool:
    """Whether ``window`` covers ``incident`` (its district or detectors, and kinds if given)."""
    if window.kinds and not set(window.kinds).intersection(incident.kinds):
        return False
    return incident.district in window.districts or bool(
        set(window.devices).intersection(incident.detectors))


def active_windows(state: GroupingState, *, now: float) -> list[SuppressionWindow]:
    """The windows of ``state`` not ended at ``now`` (current and future), by start."""
    return sorted((w for w in state.suppressions.values() if w.end_ts > now),
                  key=lambda w: (w.start_ts, w.id))


def add_window(
    state: GroupingState, window: SuppressionWindow, *, actor: str, at: float,
) -> list[IncidentEvent]:
    """Add (or replace) ``window`` in ``state``; the ``suppress`` events of what it covers."""
    state.suppressions[window.id] = window
    details = {"window": window.id, "start": iso(window.start_ts), "end": iso(window.end_ts),
               "reason": window.reason}
    return _mark(state, window, "suppress", details, actor=actor, at=at)


def end_window(
    state: GroupingState, window_id: str, *, actor: str, at: float,
) -> list[IncidentEvent] | None:
    """End the window now (None: this state knows no such window still running); the
    ``unsuppress`` events of the active incidents it covered."""
    window = state.suppressions.get(window_id)
    if window is None or window.end_ts <= at:
        return None
    ended = window.model_copy(update={"end": _ended(window, at)})
    state.suppressions[window_id] = ended
    details = {"window": window.id, "end": iso(at)}
    return _mark(state, window, "unsuppress", details, actor=actor, at=at)


def _ended(window: SuppressionWindow, at: float) -> datetime:
    return datetime.fromtimestamp(max(at, window.start_ts + 1e-3), UTC)


def _mark(state: GroupingState, window: SuppressionWindow, action: str,
          details: Mapping[str, Any], *, actor: str, at: float) -> list[IncidentEvent]:
    events: list[IncidentEvent] = []
    for key, incident in list(state.incidents.items()):
        if not incident.active or not covers(window, incident):
            continue
        event = IncidentEvent(incident.id, incident.sequence + 1, at, actor, action,
                              window.reason or None, incident.departments, dict(details))
        state.incidents[key] = apply(incident, event)
        events.append(event)
    return events

