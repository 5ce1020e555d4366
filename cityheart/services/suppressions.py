"""Maintenance windows at run time behind ``/api/suppressions``: through the flow, per district.

    windows = SuppressionService(settings, send=dispatch_service.send_command, clock=time.time)
    windows.list(claims)                           # (200, {"windows": [...]})
    windows.add(claims, {"districts": ["harbour"], "for": "2h", "reason": "pump works"})
    windows.end(claims, "pump-works")

The flow is the one writer of every incident's events and keeps its state per district, so a
window goes to it as one command per district it covers (:mod:`alerts.suppressions`); listing
asks each district the same way (and adds config.yaml's windows, ``"source": "config"``), so
what the page and ``cityheart suppress list`` show is what the flow applies. Operators add and
end windows; dispatchers and operators list them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from alerts.access import Forbidden, authorize_suppression
from alerts.commands import HTTP_STATUS, Command
from alerts.suppressions import InvalidWindow, window_from_record, window_record
from connectors.http_api import error_answer
from connectors.tokens import Claims
from models.history import parse_duration, parse_time
from models.timefmt import iso
from settings.config import Settings

__all__ = ["SuppressionService"]

Answer = tuple[HTTPStatus, dict[str, Any]]
Send = Callable[[Command], dict[str, Any]]
"""Sends a command to the flow and returns its answer (a CommandResult record)."""


class SuppressionService:
    """Add, list and end maintenance windows of one deployment (see module doc)."""

    def __init__(self, settings: Settings, *, send: Send, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._send = send
        self._clock = clock

    def list(self, claims: Claims) -> Answer:
        """The windows not ended yet: config.yaml's and those added at run time, by start."""
        if claims.role == "viewer":
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden",
                                "viewers see no maintenance windows (operators and dispatchers)")
        now = self._clock()
        found: dict[str, dict[str, Any]] = {}
        for window in self.settings.incidents.suppression:
            if window.end_ts > now:
                found[window.id] = {**window_record(window), "source": "config"}
        for district in self.settings.district_ids():
            answer = self._ask(claims, "list_suppressions", district, "list", now=now)
            if not answer.get("ok"):
                return _refusal(answer)
            for record in (answer.get("data") or {}).get("windows", []):
                found.setdefault(record["id"], {**record, "source": "runtime"})
        windows = sorted(found.values(), key=lambda w: (w["start"], w["id"]))
        return HTTPStatus.OK, {"windows": windows}

    def add(self, claims: Claims, request: Mapping[str, Any]) -> Answer:
        """Add a window (``end``, or ``for`` a duration from ``start``, default now); 201."""
        try:
            authorize_suppression(claims, "suppress")
        except Forbidden as exc:
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden", str(exc))
        now = self._clock()
        try:
            window = self._window(request, now=now)
        except (InvalidWindow, ValueError) as exc:
            return error_answer(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid", str(exc))
        record, suppressed = window_record(window), []
        for district in window.districts:
            answer = self._ask(claims, "suppress", district, window.id, now=now, window=record)
            if not answer.get("ok"):
                return _refusal(answer)
            suppressed += (answer.get("data") or {}).get("incidents", [])
        return HTTPStatus.CREATED, {"window": record, "incidents": suppressed}

    def end(self, claims: Claims, window_id: str) -> Answer:
        """End a running window added at run time now; its incidents get ``unsuppress``."""
        try:
            authorize_suppression(claims, "end_suppression")
        except Forbidden as exc:
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden", str(exc))
        status, listed = self.list(claims)
        running = [w for w in listed.get("windows", []) if w["id"] == window_id]
        if status != HTTPStatus.OK or not running or running[0]["source"] != "runtime":
            configured = [w.id for w in self.settings.incidents.suppression]
            why = " (config.yaml's windows end when config.yaml says)" if (
                window_id in configured) else ""
            return error_answer(HTTPStatus.NOT_FOUND, "not_found",
                                f"no running suppression window {window_id!r}{why}")
        now, ended = self._clock(), []
        for district in running[0]["districts"]:
            answer = self._ask(claims, "end_suppression", district, window_id, now=now,
                               target=window_id)
            if not answer.get("ok") and answer.get("error") != "not_found":
                return _refusal(answer)
            ended += (answer.get("data") or {}).get("incidents", [])
        return HTTPStatus.OK, {"window": {**running[0], "end": iso(now)}, "incidents": ended}

    def _window(self, request: Mapping[str, Any], *, now: float) -> Any:
        start = parse_time(request.get("start") or "now", now=now)
        if request.get("end") is not None:
            end = parse_time(str(request["end"]), now=now)
        elif request.get("for") is not None:
            end = start + parse_duration(str(request["for"]))
        else:
            msg = "a window needs an end: 'end' (a time) or 'for' (a duration such as 2h)"
            raise InvalidWindow(msg)
        window = window_from_record({
            "id": request.get("id") or f"win-{uuid.uuid4().hex[:8]}",
            "districts": request.get("districts") or [], "devices": request.get("devices") or [],
            "kinds": request.get("kinds") or [], "start": iso(start), "end": iso(end),
            "reason": request.get("reason") or ""})
        ids = self.settings.district_ids()
        unknown = [d for d in window.districts if d not in ids]
        if unknown or not window.districts:
            msg = f"districts {unknown or []!r}: name one or more of {ids}"
            raise InvalidWindow(msg)
        return window

    def _ask(self, claims: Claims, action: str, district: str, window_id: str, *, now: float,
             window: Mapping[str, Any] | None = None, target: str | None = None,
             ) -> dict[str, Any]:
        command = Command(id=f"cmd-{uuid.uuid4().hex}", incident_id=f"suppression:{window_id}",
                          district=district, action=action, actor=claims.sub, role=claims.role,
                          requested_at=now, department=claims.department, target=target,
                          window=window)
        return self._send(command)


def _refusal(answer: Mapping[str, Any]) -> Answer:
    error = str(answer.get("error"))
    status = HTTP_STATUS.get(error, 503 if error == "unavailable" else 400)
    return error_answer(HTTPStatus(status), error, str(answer.get("detail")))
