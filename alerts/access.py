"""Who may see and do what: feed messages masked by role, incident actions checked per role.

Roles come from a verified token's :class:`~models.claims.Claims`:

- ``operator``: every message, unmasked; every action on every incident.
- ``dispatcher`` of department X: vitals and indicators; incidents, incident events and alerts
  whose ``departments`` include X; KPIs of X. Actions ``acknowledge``, ``dispatch``,
  ``comment``, ``resolve``, ``assign``, ``transfer``, ``add_department`` and ``link`` on
  incidents routed to X; opening incidents by hand (routed to X too). Closing, reopening and
  merging stay with operators, and so does managing maintenance windows at run time
  (dispatchers may list them).
- ``viewer``: aggregated vital signs, and incidents and their events as public summaries: no
  device ids (detectors, stations, areas, substations), no precise coordinates, no free-text
  comments, no names of people. Raw alerts and KPIs are not shown. No actions.
- ``consumer``: exactly what its grant allows (``auth.grants``; :mod:`models.grants`: channels,
  districts, kinds, fields, and raw, aggregated or derived-only detail). No actions.

Feed message types: control (``hello``, ``subscribed``, ``error``, ``heartbeat``) go to
everyone; ``vital``, ``indicator``, ``alert`` as in connectors.feed.protocol; ``incident`` (an
:meth:`Incident.to_record` flattened), ``incident_event`` (an :meth:`IncidentEvent.to_record`
flattened) and ``kpi`` (a :meth:`DepartmentKpi.to_record`, with ``department``). Anything else
only operators see. The result depends only on the role and department, so a feed can mask a
message once per (role, department) and reuse the bytes::

    view(claims, message)        # the dict this client may see, or None
    may_subscribe(claims, "alerts")            # False for a viewer: it sees no raw alerts
    authorize(claims, "resolve", incident)     # None, or raises Forbidden
    authorize_report(claims)                   # may this role open incidents by hand?
    allowed_actions(claims, incident)          # ("acknowledge", "comment") for buttons
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.lifecycle import ACTIONS, Incident, available_actions
from models.claims import Claims
from models.errors import CityheartError

__all__ = [
    "CONTROL_TYPES",
    "DISPATCHER_ACTIONS",
    "Forbidden",
    "allowed_actions",
    "authorize",
    "authorize_report",
    "authorize_suppression",
    "history_refusal",
    "history_view",
    "may_act",
    "may_subscribe",
    "view",
]

CONTROL_TYPES = frozenset({"hello", "subscribed", "error", "heartbeat"})
DISPATCHER_ACTIONS = ("acknowledge", "dispatch", "comment", "resolve", "assign", "transfer",
                      "add_department", "link")
REPORT_ROLES = ("operator", "dispatcher")
_CHANNELS_OF_ROLE = {
    "dispatcher": frozenset({"vitals", "alerts", "incidents", "kpis"}),  # routed ones; own KPIs
    "viewer": frozenset({"vitals", "incidents"}),  # incidents as public summaries, no alerts
}
_VITAL_TYPES = frozenset({"vital", "indicator"})
_ROUTED_TYPES = frozenset({"incident", "incident_event", "alert"})
_VIEWER_INCIDENT = frozenset({
    "type", "seq", "time", "id", "district", "kind", "kinds", "title", "state", "severity",
    "departments", "opened_at", "updated_at", "acknowledged_at", "resolved_at", "closed_at",
    "alert_count", "outcome", "escalation_level", "districts",
})
_VIEWER_EVENT = frozenset({
    "type", "seq", "time", "id", "incident_id", "sequence", "ts", "action", "departments",
    "district", "kind",
})
_VIEWER_EVENT_DETAILS = frozenset({"outcome", "severity", "severity_from", "level"})
_SECRET_KEYS = frozenset({
    "device", "device_id", "device_ids", "detector", "detectors", "station", "area",
    "substation", "worst_substation", "sensor", "sensor_id", "alert_ids",
    "lat", "lon", "lng", "latitude", "longitude", "coordinates", "coords", "location",
    "position", "geometry", "point", "centroid", "polygon",
    "comment", "comments", "note", "notes", "actor", "acknowledged_by",
})
_DEVICE_LISTS = frozenset({"devices", "silent", "stuck", "out_of_range", "ok"})
"""Keys whose value is a list of device ids in one record and a count in another: a list goes."""


class Forbidden(CityheartError):
    """Raised when a role may not take an action on an incident."""

    def __init__(self, claims: Claims, action: str, incident_id: str, reason: str) -> None:
        super().__init__(claims, action, incident_id, reason)
        self.claims = claims
        self.action = action
        self.incident_id = incident_id
        self.reason = reason

    def __str__(self) -> str:
        who = _who(self.claims)
        return f"{who} may not {self.action} incident {self.incident_id!r}: {self.reason}"


def view(claims: Claims, message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The part of a feed ``message`` this role may see, or None when it may see none of it."""
    kind = message.get("type")
    if kind in CONTROL_TYPES or claims.role == "operator":
        return dict(message)
    if claims.role == "consumer":
        return None if claims.rules is None else claims.rules.view(message)
    if claims.role == "dispatcher":
        return _dispatcher_view(claims.department, kind, message)
    if claims.role == "viewer":
        return _viewer_view(kind, message)
    return None


def may_subscribe(claims: Claims, channel: str) -> bool:
    """Whether the role may see anything on feed ``channel`` (what it sees there is :func:`view`).

    Operators may subscribe to every channel; a role asking for a channel it may see nothing of
    is refused rather than left waiting on silence.
    """
    if claims.role == "operator":
        return True
    if claims.role == "consumer":
        return claims.rules is not None and claims.rules.may_subscribe(channel)
    return channel in _CHANNELS_OF_ROLE.get(claims.role, frozenset())


def history_view(claims: Claims, document: Mapping[str, Any]) -> dict[str, Any]:
    """A history series (``/api/history``) as this role may see it: a viewer's has no device
    ids, places or people, as its feed messages have none; a consumer's is cut as its grant
    cuts feed messages, and PermissionError (:func:`history_refusal`'s reason) for a series it
    may not read at all."""
    if claims.role == "consumer":
        reason = history_refusal(claims, str(document.get("district")),
                                 str(document.get("name")))
        if reason is not None:
            raise PermissionError(reason)
        return _scrub(document) if claims.rules and claims.rules.detail != "raw" else dict(
            document)
    return dict(document) if claims.role != "viewer" else _scrub(document)


def history_refusal(claims: Claims, district: str, name: str) -> str | None:
    """Why this caller may not read ``district``'s series of ``name`` at all, or None."""
    if claims.role != "consumer":
        return None
    rules = claims.rules
    if rules is None:
        return f"grant {claims.grant!r} is not configured here"
    if rules.detail == "derived":
        return f"grant {rules.name!r} is derived-only: answers, never values"
    if "vitals" not in rules.channels:
        return f"grant {rules.name!r} does not include vital signs"
    if not rules.covers(district):
        return f"grant {rules.name!r} does not cover district {district!r}"
    if rules.kinds is not None and name not in rules.kinds:
        return f"grant {rules.name!r} does not cover {name!r}"
    return None


def may_act(claims: Claims, action: str, departments: tuple[str, ...] | list[str]) -> bool:
    """Whether the role may take ``action`` on an incident routed to ``departments``."""
    if claims.role == "operator":
        return action in ACTIONS
    if claims.role == "dispatcher":
        return action in DISPATCHER_ACTIONS and claims.department in departments
    return False


def authorize(claims: Claims, action: str, incident: Incident) -> None:
    """Raise :class:`Forbidden`, naming the role and why, unless the role may ``action``."""
    if may_act(claims, action, incident.departments):
        return
    if claims.role == "dispatcher" and action in DISPATCHER_ACTIONS:
        reason = (f"it is routed to {list(incident.departments)}, "
                  f"not to department {claims.department!r}")
    elif claims.role == "dispatcher":
        reason = f"dispatchers may only {', '.join(DISPATCHER_ACTIONS)}"
    elif action not in ACTIONS:
        reason = f"unknown action; one of {list(ACTIONS)}"
    else:
        reason = f"role {claims.role!r} takes no actions"
    raise Forbidden(claims, action, incident.id, reason)


def authorize_report(claims: Claims) -> None:
    """Raise :class:`Forbidden` unless the role may open incidents by hand (a report)."""
    if claims.role not in REPORT_ROLES:
        reason = f"only {' and '.join(REPORT_ROLES)}s open incidents, not role {claims.role!r}"
        raise Forbidden(claims, "create", "(new)", reason)


def authorize_suppression(claims: Claims, action: str) -> None:
    """Raise :class:`Forbidden` unless the role may manage suppression windows (operators)."""
    if claims.role != "operator":
        reason = f"only operators manage suppression windows, not role {claims.role!r}"
        raise Forbidden(claims, action, "(suppression)", reason)


def allowed_actions(claims: Claims, incident: Incident) -> tuple[str, ...]:
    """The actions this role may take on ``incident`` now (role and state both allow)."""
    return tuple(a for a in available_actions(incident) if may_act(claims, a, incident.departments))


def _dispatcher_view(
    department: str | None, kind: Any, message: Mapping[str, Any]
) -> dict[str, Any] | None:
    if kind in _VITAL_TYPES:
        return dict(message)
    if kind in _ROUTED_TYPES and department in (message.get("departments") or ()):
        return dict(message)
    if kind == "kpi" and message.get("department") == department:
        return dict(message)
    return None


def _viewer_view(kind: Any, message: Mapping[str, Any]) -> dict[str, Any] | None:
    if kind in _VITAL_TYPES:
        scrubbed: dict[str, Any] = _scrub(message)
        return scrubbed
    if kind == "incident":
        return {k: v for k, v in message.items() if k in _VIEWER_INCIDENT}
    if kind == "incident_event":
        masked = {k: v for k, v in message.items() if k in _VIEWER_EVENT}
        details = message.get("details") or {}
        masked["details"] = {k: v for k, v in details.items() if k in _VIEWER_EVENT_DETAILS}
        return masked
    return None


def _scrub(value: Any) -> Any:
    """``value`` without keys that name devices, places or people, at any depth."""
    if isinstance(value, Mapping):
        return {
            k: _scrub(v) for k, v in value.items()
            if k not in _SECRET_KEYS and not (k in _DEVICE_LISTS and not isinstance(v, int))
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _who(claims: Claims) -> str:
    if claims.role == "dispatcher":
        return f"{claims.sub!r} (dispatcher of {claims.department!r})"
    if claims.role == "consumer":
        return f"{claims.sub!r} (consumer, grant {claims.grant!r})"
    return f"{claims.sub!r} ({claims.role})"
