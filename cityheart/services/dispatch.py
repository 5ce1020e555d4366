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

People also open incidents by hand (:meth:`DispatchService.create`: a report, from a phone call
or the field, sent to the flow as a ``create`` command and routed like an alert), hand them over
(``assign``, ``transfer``, ``add_department``, ``link``, ``merge`` through :meth:`act`; a link or
a merge also links the other incident back), publish them as CAP 1.2 (:meth:`cap`), and
manage maintenance windows at run time (:mod:`cityheart.services.suppressions`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from alerts.access import Forbidden, allowed_actions, authorize, authorize_report, view
from alerts.cap import cap_message
from alerts.commands import HTTP_STATUS, Command
from alerts.hand_opened import HandOpened, InvalidHandOpened, hand_opened_incident_id
from alerts.incidents import DisplayNames
from alerts.kpi import department_kpis
from alerts.lifecycle import ACTIONS, Incident, IncidentEvent
from cityheart.services.suppressions import SuppressionService
from connectors.command_bus import CommandBus
from connectors.http_api import error_answer
from connectors.storage import Storage
from connectors.storage.history import incident_record
from connectors.tokens import Claims
from models.history import parse_time
from settings.config import Settings
from settings.indicators import INDICATORS

__all__ = ["ACTION_ALIASES", "DispatchService"]

log = logging.getLogger(__name__)

ACTION_ALIASES = {"ack": "acknowledge"}
"""Short names people type for actions."""

Answer = tuple[HTTPStatus, dict[str, Any]]
_MAX_EVENTS = 1_000_000
_ANSWERS_KEPT = 1000
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
        self._locator: Any = None
        # the flow's answers, newest record per incident, until the recorder has stored them
        self._answered: dict[str, dict[str, Any]] = {}
        self._answered_lock = threading.Lock()
        self.windows = SuppressionService(settings, send=self._request, clock=clock)

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
        record = self._visible(claims, incident_id)
        if record is None:
            return error_answer(HTTPStatus.NOT_FOUND, "not_found", f"no incident {incident_id!r}")
        try:
            authorize(claims, action, Incident.from_record(record))
        except Forbidden as exc:
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden", str(exc))
        text = {name: _text(request.get(name)) for name in ("comment", "team", "outcome",
                                                             "target", "from_department")}
        refused = self._check_target(claims, str(action), incident_id, text["target"])
        if refused is not None:
            return refused
        status, document = self._send(Command.new(
            record, str(action), claims, at=self._clock(), command_id=_command_id(), **text))
        if status == HTTPStatus.OK and action in ("link", "merge") and text["target"]:
            document["linked_back"] = self._link_back(claims, text["target"], incident_id,
                                                      str(action))
        return status, document

    def create(self, claims: Claims, request: Mapping[str, Any]) -> Answer:
        """Open an incident from a person's report; 201 and ``{"event", "incident"}``."""
        try:
            authorize_report(claims)
        except Forbidden as exc:
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden", str(exc))
        try:
            report = self._report(request)
        except InvalidHandOpened as exc:
            return error_answer(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid", str(exc))
        command_id = _command_id()
        command = Command(id=command_id, incident_id=hand_opened_incident_id(command_id),
                          district=report.district, action="create", actor=claims.sub,
                          role=claims.role, requested_at=self._clock(),
                          department=claims.department, report=report.to_record())
        status, document = self._send(command)
        return (HTTPStatus.CREATED if status == HTTPStatus.OK else status), document

    def cap(self, claims: Claims, incident_id: str) -> Answer:
        """The CAP 1.2 message of an incident: ``{"identifier", "msg_type", "references",
        "xml"}`` (operators, and dispatchers of its departments)."""
        record = self._visible(claims, incident_id)
        if record is None:
            return error_answer(HTTPStatus.NOT_FOUND, "not_found", f"no incident {incident_id!r}")
        if claims.role == "viewer":
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden",
                                "viewers may not publish warnings (operators and dispatchers)")
        incident = Incident.from_record(record)
        rows = self._storage().history.incident_events(incident_id=incident_id,
                                                        limit=_MAX_EVENTS)
        events = [IncidentEvent.from_record(row) for row in rows]
        message = cap_message(incident, events, districts=self.settings.districts,
                              names=DisplayNames.from_settings(self.settings),
                              sender=_sender(self.settings))
        return HTTPStatus.OK, {"identifier": message.identifier, "msg_type": message.msg_type,
                               "references": message.references, "xml": message.xml}

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

    def _visible(self, claims: Claims, incident_id: str) -> dict[str, Any] | None:
        """The latest record of an incident this caller may see, or None: the stored one, or
        the flow's last answer about it when the recorder has not stored that yet (an
        incident just opened by hand, acted on at once)."""
        row = self._storage().history.incident(incident_id)
        record = None if row is None else incident_record(row)
        with self._answered_lock:
            answered = self._answered.get(incident_id)
        if answered is not None and (record is None or int(record.get("sequence") or 0) < int(
                answered.get("sequence") or 0)):
            record = answered
        if record is None or view(claims, {"type": "incident", **record}) is None:
            return None
        return record

    def _remember(self, record: Mapping[str, Any]) -> None:
        with self._answered_lock:
            self._answered.pop(str(record["id"]), None)
            self._answered[str(record["id"])] = dict(record)
            while len(self._answered) > _ANSWERS_KEPT:
                del self._answered[next(iter(self._answered))]

    def _check_target(self, claims: Claims, action: str, incident_id: str,
                      target: str | None) -> Answer | None:
        """A refusal when a handover's target is not a department or an incident in sight."""
        if action in ("transfer", "add_department") and target is not None:
            known = [d.id for d in self.settings.incidents.departments]
            if target not in known:
                return error_answer(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid",
                                    f"department {target!r} is not one of {known}")
        if action in ("link", "merge") and target is not None:
            if target == incident_id:
                return error_answer(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid",
                                    f"cannot {action} incident {incident_id!r} with itself")
            if self._visible(claims, target) is None:
                return error_answer(HTTPStatus.NOT_FOUND, "not_found",
                                    f"no incident {target!r} to {action} with")
        return None

    def _link_back(self, claims: Claims, target: str, incident_id: str, action: str
                   ) -> dict[str, Any]:
        """Link ``target`` back to ``incident_id`` (the other side of a link or merge)."""
        record = self._visible(claims, target)
        if record is None:
            return {"ok": False, "detail": f"no incident {target!r}"}
        comment = f"{incident_id} was merged into this incident" if action == "merge" else None
        command = Command.new(record, "link", claims, at=self._clock(),
                              command_id=_command_id(), target=incident_id, comment=comment)
        status, document = self._send(command)
        if status != HTTPStatus.OK:
            log.info("dispatch API: %s back from %s refused: %s", action, target, document)
            return {"ok": False, "detail": document.get("detail")}
        return {"ok": True, "event": document.get("event")}

    def suppressions(self, claims: Claims) -> Answer:
        """The maintenance windows not ended yet (config.yaml's and run-time ones)."""
        return self.windows.list(claims)

    def suppress(self, claims: Claims, request: Mapping[str, Any]) -> Answer:
        """Add a maintenance window at run time; 201."""
        return self.windows.add(claims, request)

    def end_suppression(self, claims: Claims, window_id: str) -> Answer:
        """End a run-time maintenance window now."""
        return self.windows.end(claims, window_id)

    def _request(self, command: Command) -> dict[str, Any]:
        """The flow's answer (a CommandResult record) to ``command``."""
        if self._bus is None:
            return {"ok": False, "error": "unavailable",
                    "detail": "this server sends no commands (no Kafka configured)"}
        return self._bus.request(command.id, command.incident_id, command.to_record(),
                                 timeout=self._timeout)

    def _send(self, command: Command) -> Answer:
        """Send ``command`` to the flow; (200, its event and incident) or its refusal."""
        if self._bus is None:
            return error_answer(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable",
                                "this server sends no commands (no Kafka configured)")
        result = self._request(command)
        if not result.get("ok"):
            error = str(result.get("error"))
            return error_answer(HTTPStatus(HTTP_STATUS.get(error, 400)), error,
                                str(result.get("detail")))
        self._remember(result["incident"])
        claims = command.claims
        event = view(claims, {"type": "incident_event", **result["event"]})
        return HTTPStatus.OK, {"event": event,
                               "incident": self._shown(claims, result["incident"])}

    def _report(self, request: Mapping[str, Any]) -> HandOpened:
        """The report of a create request, its district found from its position if need be."""
        kinds = sorted({*self.settings.kinds, *INDICATORS})
        if request.get("kind") not in kinds:
            msg = f"kind {request.get('kind')!r} is not one of {kinds}"
            raise InvalidHandOpened(msg)
        district = request.get("district")
        report = HandOpened.from_record({**request, "district": district or "?",
                                     "reporter": request.get("reporter") or None})
        if district is None and report.lat is not None and report.lon is not None:
            district = self._locate(report.lat, report.lon)
        elif district is None:
            msg = "a report needs a district or a position (lat and lon)"
            raise InvalidHandOpened(msg)
        ids = self.settings.district_ids()
        if district not in ids:
            msg = f"district {district!r} is not one of {ids}"
            raise InvalidHandOpened(msg)
        return HandOpened.from_record({**report.to_record(), "district": district})

    def _locate(self, lat: float, lon: float) -> str:
        if self._locator is None:
            from models.geography import Locator
            from settings.geography import geography_of

            self._locator = Locator(geography_of(self.settings.districts).districts)
        district = self._locator.locate(lat, lon)
        if district is None:
            msg = f"the position {lat:g}, {lon:g} is in no district of the city"
            raise InvalidHandOpened(msg)
        return str(district)

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


def _command_id() -> str:
    return f"cmd-{uuid.uuid4().hex}"


def _sender(settings: Settings) -> str:
    """Who the city's CAP messages come from: ``cityheart@<the city's name, as a host>``."""
    name = "".join(c if c.isalnum() else "-" for c in settings.city.name.lower()).strip("-")
    return f"cityheart@{name or 'city'}"
