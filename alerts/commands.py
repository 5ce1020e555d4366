"""People's actions on incidents as commands: what the API asks, what the flow answers.

The dispatch API (HTTP, the feed, ``cityheart incident``) never changes an incident itself: it
checks the caller's token, then puts a :class:`Command` on the ``commands`` topic. The city
flow, the one writer of every incident's events, applies it to the incident as it knows it
(:func:`execute`) and answers with a :class:`CommandResult` on the ``command_results`` topic: the
event it made, or why it refused::

    command = Command.new(incident, "acknowledge", claims, at=now, command_id=uuid)
    result, incident_after = execute(command, incident_or_none)
    result.ok, result.error, result.event          # error: forbidden | not_found | ...

Errors (``CommandResult.error``) and the HTTP status an API gives them (:data:`HTTP_STATUS`):

- ``not_found``: the flow knows no such incident in that district;
- ``forbidden``: the role or department may not take this action on this incident;
- ``conflict``: the incident's state does not allow the action (acknowledge a resolved one);
- ``invalid``: the action is unknown or lacks what it needs (a team, an outcome, a text).

The event's time is the command's ``requested_at`` (when the person acted), so a replay of the
commands makes the same events. A ``create`` command opens an incident by hand from its
``report`` field (:mod:`alerts.hand_opened`; its ``incident_id`` is
:func:`~alerts.hand_opened.hand_opened_incident_id` of the command id); the handover actions
name their ``target`` (a person, a department or another incident) and a transfer its
``from_department``. Departments are checked against the ``known_departments`` the caller
passes (the flow: config.yaml's).

The notifier records what it sent through the same path: a ``notify`` command of role
:data:`NOTIFIER_ROLE` (made by :func:`notify_command`) becomes a ``notify`` event whose details
are the command's (``notification``, ``status``: sent, delivered or failed, ``channel``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from alerts.access import Forbidden, authorize, authorize_report, authorize_suppression
from alerts.hand_opened import HAND_OPENED_RULE, HandOpened, InvalidHandOpened, open_by_hand
from alerts.lifecycle import (
    Incident,
    IncidentEvent,
    InvalidAction,
    InvalidTransition,
    act,
    apply,
    to_epoch,
)
from alerts.notify_rules import NOTIFY_ACTION
from alerts.routing import merge, route
from alerts.suppressions import (
    InvalidWindow,
    active_windows,
    add_window,
    end_window,
    window_from_record,
    window_record,
)
from models.claims import Claims
from models.errors import CityheartError
from models.timefmt import iso
from settings.incidents import IncidentSettings

if TYPE_CHECKING:
    from alerts.incidents import GroupingState

__all__ = [
    "ERRORS",
    "execute_suppression",
    "HTTP_STATUS",
    "Command",
    "CommandResult",
    "InvalidCommand",
    "NOTIFIER_ROLE",
    "execute",
    "notify_command",
]

ERRORS = ("not_found", "forbidden", "conflict", "invalid")
NOTIFIER_ROLE = "system"
"""The role of the notifier's ``notify`` commands (no token carries it)."""
HTTP_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422}
_TEXT_LIMIT = 4000


class InvalidCommand(CityheartError):
    """Raised when a command record lacks a field or has a wrong value; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid incident command: {self.reason}"


@dataclass(frozen=True, slots=True)
class Command:
    """One person's request to act on one incident, with who they are (from their token)."""

    id: str
    incident_id: str
    district: str
    action: str
    actor: str
    role: str
    requested_at: float
    department: str | None = None
    comment: str | None = None
    team: str | None = None
    outcome: str | None = None
    details: Mapping[str, Any] | None = None
    """What a ``notify`` command records (None for people's actions)."""
    target: str | None = None
    from_department: str | None = None
    report: Mapping[str, Any] | None = None
    window: Mapping[str, Any] | None = None

    @classmethod
    def new(
        cls, incident: Incident | Mapping[str, Any], action: str, claims: Claims, *,
        at: float, command_id: str, comment: str | None = None, team: str | None = None,
        outcome: str | None = None, target: str | None = None,
        from_department: str | None = None,
    ) -> Command:
        """The command of ``claims`` acting on ``incident`` (an Incident or its record)."""
        record = incident.to_record() if isinstance(incident, Incident) else incident
        return cls(
            id=command_id, incident_id=str(record["id"]), district=str(record["district"]),
            action=action, actor=claims.sub, role=claims.role, requested_at=at,
            department=claims.department, comment=_text(comment), team=_text(team),
            outcome=outcome, target=_text(target), from_department=_text(from_department),
        )

    @property
    def claims(self) -> Claims:
        """The caller's claims, as far as deciding permissions needs them."""
        at = int(self.requested_at)
        return Claims(role=self.role, sub=self.actor, iat=at, exp=at + 1,
                      department=self.department)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict; ``requested_at`` as ISO 8601."""
        return {"id": self.id, "incident_id": self.incident_id, "district": self.district,
                "action": self.action, "actor": self.actor, "role": self.role,
                "department": self.department, "requested_at": iso(self.requested_at),
                "comment": self.comment, "team": self.team, "outcome": self.outcome,
                "target": self.target, "from_department": self.from_department,
                "report": None if self.report is None else dict(self.report),
                "window": None if self.window is None else dict(self.window),
                **({"details": dict(self.details)} if self.details is not None else {})}

    @classmethod
    def from_record(cls, record: Any) -> Command:
        """The command of a :meth:`to_record` dict; :class:`InvalidCommand` if it is not one."""
        if not isinstance(record, Mapping):
            msg = f"expected a JSON object, got {type(record).__name__}"
            raise InvalidCommand(msg)
        for name in ("id", "incident_id", "district", "action", "actor", "role"):
            if not isinstance(record.get(name), str) or not record[name]:
                msg = f"field {name!r} must be a non-empty string"
                raise InvalidCommand(msg)
        for name in ("department", "comment", "team", "outcome", "target", "from_department"):
            if record.get(name) is not None and not isinstance(record[name], str):
                msg = f"field {name!r} must be a string or null"
                raise InvalidCommand(msg)
        for name in ("report", "window"):
            if record.get(name) is not None and not isinstance(record[name], Mapping):
                msg = f"field {name!r} must be a JSON object or null"
                raise InvalidCommand(msg)
        try:
            at = to_epoch(record.get("requested_at"))
        except (TypeError, ValueError) as exc:
            msg = f"requested_at {record.get('requested_at')!r}: {exc}"
            raise InvalidCommand(msg) from None
        if at is None or not math.isfinite(at):
            msg = f"requested_at {record.get('requested_at')!r} is not a time"
            raise InvalidCommand(msg)
        details = record.get("details")
        if details is not None and not isinstance(details, Mapping):
            msg = f"field 'details' must be an object or null, got {type(details).__name__}"
            raise InvalidCommand(msg)
        return cls(
            id=record["id"], incident_id=record["incident_id"], district=record["district"],
            action=record["action"], actor=record["actor"], role=record["role"],
            requested_at=at, department=record.get("department"), comment=record.get("comment"),
            team=record.get("team"), outcome=record.get("outcome"), details=details,
            target=record.get("target"), from_department=record.get("from_department"),
            report=record.get("report"), window=record.get("window"),
        )


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The flow's answer to one command: the event it made, or the error and why."""

    command_id: str
    incident_id: str
    error: str | None = None
    detail: str | None = None
    event: Mapping[str, Any] | None = None
    incident: Mapping[str, Any] | None = field(default=None)
    data: Mapping[str, Any] | None = None   # what a command that asks something answers

    @property
    def ok(self) -> bool:
        """Whether the action was taken."""
        return self.error is None

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict: command_id, incident_id, ok, error, detail, event, incident, data."""
        return {"command_id": self.command_id, "incident_id": self.incident_id, "ok": self.ok,
                "error": self.error, "detail": self.detail,
                "event": None if self.event is None else dict(self.event),
                "incident": None if self.incident is None else dict(self.incident),
                "data": None if self.data is None else dict(self.data)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CommandResult:
        """The result of a :meth:`to_record` dict."""
        return cls(command_id=record["command_id"], incident_id=record["incident_id"],
                   error=record.get("error"), detail=record.get("detail"),
                   event=record.get("event"), incident=record.get("incident"),
                   data=record.get("data"))


def execute(
    command: Command, incident: Incident | None, settings: IncidentSettings | None = None,
) -> tuple[CommandResult, Incident | None]:
    """Apply ``command`` to ``incident`` (None: unknown): (the answer, the incident after it).

    Permissions are checked here too, against the incident as the flow knows it (its
    departments may have grown since the API looked), so the writer has the last word.
    ``settings`` route reports and name the departments a transfer may go to (None: any).
    """
    if command.action == "create":
        return _create(command, incident, settings or IncidentSettings())
    if incident is None or incident.district != command.district:
        detail = f"no incident {command.incident_id!r} in district {command.district!r}"
        return CommandResult(command.id, command.incident_id, "not_found", detail), incident
    if command.action == NOTIFY_ACTION or command.role == NOTIFIER_ROLE:
        return _notified(command, incident)
    try:
        authorize(command.claims, command.action, incident)
        if command.action in ("transfer", "add_department") and settings is not None:
            _known_department(incident, command.target, settings)
        from_department = command.from_department
        if command.action == "transfer" and command.role == "dispatcher":
            from_department = command.department
        after, event = act(incident, command.action, actor=command.actor,
                           at=command.requested_at, comment=command.comment,
                           team=command.team, outcome=command.outcome, target=command.target,
                           from_department=from_department)
    except Forbidden as exc:
        return _refused(command, "forbidden", exc), incident
    except InvalidTransition as exc:
        return _refused(command, "conflict", exc), incident
    except InvalidAction as exc:
        return _refused(command, "invalid", exc), incident
    event = _with_command(event, command)
    result = CommandResult(command.id, command.incident_id, event=event.to_record(),
                           incident=after.to_record())
    return result, after


def notify_command(
    incident_id: str, district: str, details: Mapping[str, Any], *, at: float, command_id: str,
    actor: str = "notifier",
) -> Command:
    """The notifier's command recording a notification's ``details`` on an incident."""
    return Command(id=command_id, incident_id=incident_id, district=district,
                   action=NOTIFY_ACTION, actor=actor, role=NOTIFIER_ROLE, requested_at=at,
                   details=dict(details))


def _notified(command: Command, incident: Incident) -> tuple[CommandResult, Incident]:
    if command.action != NOTIFY_ACTION or command.role != NOTIFIER_ROLE:
        detail = (f"only the notifier (role {NOTIFIER_ROLE!r}) records {NOTIFY_ACTION!r} "
                  f"events, got action {command.action!r} of role {command.role!r}")
        return CommandResult(command.id, command.incident_id, "forbidden", detail), incident
    details = {**(command.details or {}), "command_id": command.id}
    event = IncidentEvent(incident.id, incident.sequence + 1, command.requested_at,
                          command.actor, NOTIFY_ACTION, None, incident.departments, details)
    after = apply(incident, event)
    return CommandResult(command.id, command.incident_id, event=event.to_record(),
                         incident=after.to_record()), after
def _create(
    command: Command, known: Incident | None, settings: IncidentSettings,
) -> tuple[CommandResult, Incident | None]:
    """Open the incident of a ``create`` command's report (routed like an alert's)."""
    if known is not None:
        detail = f"incident {command.incident_id!r} exists already"
        return CommandResult(command.id, command.incident_id, "conflict", detail), known
    try:
        authorize_report(command.claims)
        report = HandOpened.from_record(command.report)
        if report.district != command.district:
            msg = f"its district {report.district!r} is not the command's {command.district!r}"
            raise InvalidHandOpened(msg)
    except Forbidden as exc:
        return _refused(command, "forbidden", exc), None
    except InvalidHandOpened as exc:
        return _refused(command, "invalid", exc), None
    departments = route(settings.routing, district=report.district, kinds=(report.kind,),
                        severity=report.severity, rules=(HAND_OPENED_RULE,))
    if command.department is not None:  # a dispatcher keeps sight of what they opened
        departments = merge(departments, (command.department,))
    incident, event = open_by_hand(report, incident_id=command.incident_id, actor=command.actor,
                                  at=command.requested_at, departments=departments)
    event = _with_command(event, command)
    result = CommandResult(command.id, command.incident_id, event=event.to_record(),
                           incident=incident.to_record())
    return result, incident


def execute_suppression(
    command: Command, state: GroupingState,
) -> tuple[CommandResult, list[IncidentEvent]]:
    """Apply a ``suppress``, ``end_suppression`` or ``list_suppressions`` command to one
    district's ``state`` (see :mod:`alerts.suppressions`): (the answer, the incident events)."""
    at = command.requested_at
    try:
        if command.action != "list_suppressions" or command.role == "viewer":
            authorize_suppression(command.claims, command.action)
        if command.action == "list_suppressions":
            windows = [window_record(w) for w in active_windows(state, now=at)]
            return CommandResult(command.id, command.incident_id,
                                 data={"windows": windows}), []
        if command.action == "end_suppression":
            events = end_window(state, str(command.target), actor=command.actor, at=at)
            if events is None:
                detail = (f"no running suppression window {command.target!r} in district "
                          f"{command.district!r}")
                return CommandResult(command.id, command.incident_id, "not_found", detail), []
            window = state.suppressions[str(command.target)]
        else:
            window = window_from_record(command.window)
            if command.district not in window.districts:
                msg = f"it does not cover district {command.district!r}"
                raise InvalidWindow(msg)
            events = add_window(state, window, actor=command.actor, at=at)
    except Forbidden as exc:
        return _refused(command, "forbidden", exc), []
    except InvalidWindow as exc:
        return _refused(command, "invalid", exc), []
    events = [_with_command(e, command) for e in events]
    data = {"window": window_record(window), "incidents": [e.incident_id for e in events]}
    return CommandResult(command.id, command.incident_id, data=data), events


def _known_department(incident: Incident, department: str | None,
                      settings: IncidentSettings) -> None:
    known = [d.id for d in settings.departments]
    if department is not None and known and department not in known:
        reason = f"department {department!r} is not one of {known}"
        raise InvalidAction(incident.id, reason)


def _refused(command: Command, error: str, exc: Exception) -> CommandResult:
    return CommandResult(command.id, command.incident_id, error, str(exc))


def _with_command(event: IncidentEvent, command: Command) -> IncidentEvent:
    """The event with its command's id (and what the command adds, such as the notification
    whose link acknowledged it)."""
    return replace(event, details={**(command.details or {}), **event.details,
                                   "command_id": command.id})


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:_TEXT_LIMIT] if value else None
