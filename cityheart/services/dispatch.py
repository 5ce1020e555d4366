"""The dispatch API behind the dashboard's ``/api/``: incidents from the database, actions through
the flow, everything masked by the caller's role.

    service = DispatchService(settings, storage=lambda: storage, bus=bus)
    WebServer(settings, dashboard, static_dir=..., api=service, authenticate=authenticate)

Reads come from PostgreSQL, the system of record (what the recorder stored from the
``incidents`` topic); an incident's timeline is its stored events. An action is checked here
first (the incident exists and this caller may see it and take the action: a quick, clear
refusal), then sent to the flow as a :class:`~alerts.commands.Command` over the
:class:`~connectors.command_bus.CommandBus`; the flow's answer is the API's answer, so the
incident's one writer has the last word. Every document passes through
:func:`alerts.access.view` as the feed's messages do: a viewer sees no device ids, no
comments, no names.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from alerts.access import Forbidden, allowed_actions, authorize, view
from alerts.commands import HTTP_STATUS, Command
from alerts.kpi import department_kpis
from alerts.lifecycle import ACTIONS, Incident
from connectors.command_bus import CommandBus
from connectors.http_api import error_answer
from connectors.storage import Storage
from connectors.storage.history import incident_record
from connectors.tokens import Claims
from models.history import parse_time
from settings.config import Settings

__all__ = ["ACTION_ALIASES", "DispatchService"]

log = logging.getLogger(__name__)

ACTION_ALIASES = {"ack": "acknowledge"}
"""Short names people type for actions."""

Answer = tuple[HTTPStatus, dict[str, Any]]
_MAX_EVENTS = 1_000_000
_READ_AHEAD = 20


class DispatchService:
    """The :class:`~connectors.http_api.IncidentApi` of one deployment (see module doc)."""

    def __init__(
        self, settings: Settings, *, storage: Callable[[], Storage], bus: CommandBus | None,
        clock: Callable[[], float] = time.time, timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self._storage = storage
        self._bus = bus
        self._clock = clock
        self._timeout = timeout

    def incidents(self, claims: Claims, *, states: list[str], limit: int) -> dict[str, Any]:
        """The incidents this caller may see (newest first), with the actions it may take."""
        # newest first; a dispatcher sees only some of them, so read ahead before masking
        rows = self._storage().history.incidents(states=states, limit=_READ_AHEAD * limit,
                                                 newest_first=True)
        shown = [self._shown(claims, incident_record(row)) for row in rows]
        return {"incidents": [s for s in shown if s is not None][:limit]}

    def incident(self, claims: Claims, incident_id: str) -> dict[str, Any] | None:
        """One incident and its timeline, or None when unknown or not this caller's."""
        history = self._storage().history
        row = history.incident(incident_id)
        shown = None if row is None else self._shown(claims, incident_record(row))
        if shown is None:
            return None
        events = history.incident_events(incident_id=incident_id, limit=_MAX_EVENTS)
        # masked as the incident is routed now: a department routed in later sees it all
        now_routed = shown.get("departments") or []
        timeline = []
        for row in events:
            event = _event(row)
            visible = view(claims, {**event, "type": "incident_event",
                                    "departments": now_routed})
            if visible is not None:
                visible["departments"] = event.get("departments") or []
                timeline.append(visible)
        return {"incident": shown, "events": timeline}

    def act(self, claims: Claims, incident_id: str, request: Mapping[str, Any]) -> Answer:
        """Check, send to the flow, and answer with its event or its refusal."""
        action = ACTION_ALIASES.get(str(request.get("action")), request.get("action"))
        if action not in ACTIONS:
            return error_answer(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid",
                                f"action {request.get('action')!r} is not one of {list(ACTIONS)}")
        row = self._storage().history.incident(incident_id)
        record = None if row is None else incident_record(row)
        if record is None or view(claims, {"type": "incident", **record}) is None:
            return error_answer(HTTPStatus.NOT_FOUND, "not_found", f"no incident {incident_id!r}")
        try:
            authorize(claims, action, Incident.from_record(record))
        except Forbidden as exc:
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden", str(exc))
        if self._bus is None:
            return error_answer(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable",
                                "this server sends no commands (no Kafka configured)")
        text = {name: _text(request.get(name)) for name in ("comment", "team", "outcome")}
        command = Command.new(record, action, claims, at=self._clock(),
                              command_id=f"cmd-{uuid.uuid4().hex}", **text)
        result = self._bus.request(command.id, command.incident_id, command.to_record(),
                                   timeout=self._timeout)
        if not result.get("ok"):
            error = str(result.get("error"))
            return error_answer(HTTPStatus(HTTP_STATUS.get(error, 400)), error,
                                str(result.get("detail")))
        event = view(claims, {"type": "incident_event", **result["event"]})
        return HTTPStatus.OK, {"event": event,
                               "incident": self._shown(claims, result["incident"])}

    def kpi(self, claims: Claims, *, since: str, until: str) -> Answer:
        """Department KPIs in ``[since, until)``: all for operators, their own for dispatchers."""
        if claims.role == "viewer":
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden", "viewers see no KPIs")
        rules = claims.rules
        if claims.role == "consumer" and (rules is None or "kpis" not in rules.channels
                                          or rules.detail == "derived"):
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden",
                                f"grant {claims.grant!r} does not include KPIs")
        everyone = claims.role in ("operator", "consumer")
        now = self._clock()
        try:
            start, end = parse_time(since, now=now), parse_time(until, now=now)
        except ValueError as exc:
            return error_answer(HTTPStatus.BAD_REQUEST, "invalid", str(exc))
        events = self._storage().history.incident_events(since=start, limit=_MAX_EVENTS)
        departments = [d for d in self.settings.incidents.departments
                       if everyone or d.id == claims.department]
        rows = department_kpis(events, departments, now=min(now, end), since=start, until=end)
        mine = [r.to_record() for r in rows if everyone or r.department == claims.department]
        return HTTPStatus.OK, {"since": since, "until": until, "departments": mine}

    def _shown(self, claims: Claims, record: Mapping[str, Any]) -> dict[str, Any] | None:
        shown = view(claims, {"type": "incident", **record})
        if shown is None:
            return None
        shown.pop("type", None)
        shown["allowed_actions"] = list(allowed_actions(claims, Incident.from_record(record)))
        return shown


def _event(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
