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
commands makes the same events.

The notifier records what it sent through the same path: a ``notify`` command of role
:data:`NOTIFIER_ROLE` (made by :func:`notify_command`) becomes a ``notify`` event whose details
are the command's (``notification``, ``status``: sent, delivered or failed, ``channel``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.access import Forbidden, authorize
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
from models.claims import Claims
from models.errors import CityheartError
from models.timefmt import iso

__all__ = [
    "ERRORS",
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

    @classmethod
    def new(
        cls, incident: Incident | Mapping[str, Any], action: str, claims: Claims, *,
        at: float, command_id: str, comment: str | None = None, team: str | None = None,
        outcome: str | None = None,
    ) -> Command:
        """The command of ``claims`` acting on ``incident`` (an Incident or its record)."""
        record = incident.to_record() if isinstance(incident, Incident) else incident
        return cls(
            id=command_id, incident_id=str(record["id"]), district=str(record["district"]),
            action=action, actor=claims.sub, role=claims.role, requested_at=at,
            department=claims.department, comment=_text(comment), team=_text(team),
            outcome=outcome,
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
        for name in ("department", "comment", "team", "outcome"):
            if record.get(name) is not None and not isinstance(record[name], str):
                msg = f"field {name!r} must be a string or null"
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

    @property
    def ok(self) -> bool:
        """Whether the action was taken."""
        return self.error is None

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict: command_id, incident_id, ok, error, detail, event, incident."""
        return {"command_id": self.command_id, "incident_id": self.incident_id, "ok": self.ok,
                "error": self.error, "detail": self.detail,
                "event": None if self.event is None else dict(self.event),
                "incident": None if self.incident is None else dict(self.incident)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CommandResult:
        """The result of a :meth:`to_record` dict."""
        return cls(command_id=record["command_id"], incident_id=record["incident_id"],
                   error=record.get("error"), detail=record.get("detail"),
                   event=record.get("event"), incident=record.get("incident"))


def execute(command: Command, incident: Incident | None) -> tuple[CommandResult, Incident | None]:
    """Apply ``command`` to ``incident`` (None: unknown): (the answer, the incident after it).

    Permissions are checked here too, against the incident as the flow knows it (its
    departments may have grown since the API looked), so the writer has the last word.
    """
    if incident is None or incident.district != command.district:
        detail = f"no incident {command.incident_id!r} in district {command.district!r}"
        return CommandResult(command.id, command.incident_id, "not_found", detail), incident
    if command.action == NOTIFY_ACTION or command.role == NOTIFIER_ROLE:
        return _notified(command, incident)
    try:
        authorize(command.claims, command.action, incident)
        after, event = act(incident, command.action, actor=command.actor,
                           at=command.requested_at, comment=command.comment,
                           team=command.team, outcome=command.outcome)
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
