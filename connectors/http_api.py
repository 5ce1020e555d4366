"""The dispatch API's HTTP side: routes, tokens and status codes for the dashboard's server.

:mod:`connectors.web_app` hands every ``/api/...`` request except ``/api/history`` to
:func:`answer`, which checks the caller's token and calls an :class:`IncidentApi` (built by the
cityheart layer from the database, the command bus and the access rules)::

    GET  /api/whoami                        {"role", "department", "sub"}
    GET  /api/incidents?state=open&limit=200   {"incidents": [incident + "allowed_actions"]}
    GET  /api/incidents/ID                  {"incident": ..., "events": [...]}  (404 unknown)
    POST /api/incidents                     body {"kind", "title", "severity", "district"? |
                                            "lat"/"lon"?, "description"?, "reporter"?}
                                            -> 201 {"event", "incident"}: a person's report
    POST /api/incidents/ID/actions          body {"action", "comment"?, "team"?, "outcome"?,
                                            "target"?, "from_department"?}
                                            -> {"event", "incident"}; 403 forbidden, 404,
                                            409 conflict (state), 422 invalid, 503 flow away
    GET  /api/incidents/ID/cap              {"identifier", "msg_type", "references", "xml"}:
                                            the incident as a CAP 1.2 message
    GET  /api/suppressions                  {"windows": [...]}: maintenance windows not ended
    POST /api/suppressions                  body {"districts", "devices"?, "kinds"?, "end" |
                                            "for", "start"?, "reason"?, "id"?} -> 201
    POST /api/suppressions/ID/end           end a window added at run time, now
    GET  /api/kpi?since=7d&until=now        {"since", "until", "departments": [...]}

The token comes as ``Authorization: Bearer <token>`` (or ``?token=``). Without one the caller
is refused (401) when ``auth.required``; else, when tokens are checked at all (a secret is
set), served as an anonymous viewer (no actions, masked), and only on a server that checks no
tokens (a demo) as an anonymous operator. Every error
answer is ``{"error": code, "detail": sentence}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

import orjson

from connectors.tokens import Claims, TokenError
from models.errors import CityheartError

__all__ = [
    "ANONYMOUS", "ANONYMOUS_VIEWER", "MAX_BODY", "Answer", "ApiRequest", "IncidentApi", "answer",
    "caller", "error_answer",
]

log = logging.getLogger(__name__)

ANONYMOUS = Claims(role="operator", sub="anonymous", iat=0, exp=2**62)
"""Who a caller without a token is on a server that checks no tokens."""

ANONYMOUS_VIEWER = Claims(role="viewer", sub="anonymous", iat=0, exp=2**62)
"""Who a caller without a token is where tokens are checked but not required."""

MAX_BODY = 64 * 1024
"""The largest request body the API reads, in bytes; a larger one is answered 413."""

Answer = tuple[HTTPStatus, dict[str, Any]]


class IncidentApi(Protocol):
    """What the routes need; every method gets the caller's verified claims."""

    def incidents(self, claims: Claims, *, states: list[str], limit: int) -> dict[str, Any]:
        """The incidents this caller may see."""

    def incident(self, claims: Claims, incident_id: str) -> dict[str, Any] | None:
        """One incident with its event timeline, or None (unknown or not this caller's)."""

    def act(self, claims: Claims, incident_id: str, request: Mapping[str, Any]) -> Answer:
        """Take an action; the status and the answer document."""

    def create(self, claims: Claims, request: Mapping[str, Any]) -> Answer:
        """Open an incident from a person's report; the status and the answer document."""

    def cap(self, claims: Claims, incident_id: str) -> Answer:
        """The incident's CAP 1.2 message; the status and the answer document."""

    def suppressions(self, claims: Claims) -> Answer:
        """The maintenance windows not ended yet."""

    def suppress(self, claims: Claims, request: Mapping[str, Any]) -> Answer:
        """Add a maintenance window."""

    def end_suppression(self, claims: Claims, window_id: str) -> Answer:
        """End a maintenance window now."""

    def kpi(self, claims: Claims, *, since: str, until: str) -> Answer:
        """Department KPIs this caller may see."""


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request as the routes need it."""

    method: str
    path: str
    query: str
    authorization: str | None = None
    body: bytes = b""


def answer(
    request: ApiRequest, api: IncidentApi | None, *,
    authenticate: Callable[[str], Claims] | None, auth_required: bool,
) -> Answer:
    """The status and JSON document answering ``request`` (see module doc)."""
    if api is None:
        return error_answer(HTTPStatus.NOT_FOUND, "not_found", "this server has no dispatch API")
    query = parse_qs(request.query)
    claims = caller(request, authenticate=authenticate, auth_required=auth_required)
    if isinstance(claims, tuple):
        return claims
    parts = [unquote(p) for p in request.path.strip("/").split("/")]
    try:
        return _route(request, parts, query, api, claims)
    except CityheartError as exc:
        log.warning("dispatch API: %s %s: %s", request.method, request.path, exc)
        return error_answer(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", str(exc))


def _route(
    request: ApiRequest, parts: list[str], query: dict[str, list[str]], api: IncidentApi,
    claims: Claims,
) -> Answer:
    get = request.method in ("GET", "HEAD")
    if parts == ["api", "whoami"] and get:
        return HTTPStatus.OK, {"role": claims.role, "department": claims.department,
                               "grant": claims.grant, "sub": claims.sub}
    if parts == ["api", "incidents"] and get:
        try:
            limit = min(int(query.get("limit", ["500"])[0]), 5000)
        except ValueError:
            return error_answer(HTTPStatus.BAD_REQUEST, "invalid", "limit must be a whole number")
        return HTTPStatus.OK, api.incidents(claims, states=query.get("state", []), limit=limit)
    if parts == ["api", "incidents"] and request.method == "POST":
        body = _json_body(request.body)
        return body if isinstance(body, tuple) else api.create(claims, body)
    if len(parts) == 4 and parts[:2] == ["api", "incidents"] and parts[3] == "cap" and get:
        return api.cap(claims, parts[2])
    if len(parts) == 3 and parts[:2] == ["api", "incidents"] and get:
        found = api.incident(claims, parts[2])
        if found is None:
            return error_answer(HTTPStatus.NOT_FOUND, "not_found", f"no incident {parts[2]!r}")
        return HTTPStatus.OK, found
    if len(parts) == 4 and parts[:2] == ["api", "incidents"] and parts[3] == "actions":
        if request.method != "POST":
            return error_answer(HTTPStatus.METHOD_NOT_ALLOWED, "invalid", "POST an action here")
        body = _json_body(request.body)
        if isinstance(body, tuple):
            return body
        return api.act(claims, parts[2], body)
    if parts == ["api", "suppressions"] and get:
        return api.suppressions(claims)
    if parts == ["api", "suppressions"] and request.method == "POST":
        body = _json_body(request.body)
        return body if isinstance(body, tuple) else api.suppress(claims, body)
    if len(parts) == 4 and parts[:2] == ["api", "suppressions"] and parts[3] == "end" and (
            request.method == "POST"):
        return api.end_suppression(claims, parts[2])
    if parts == ["api", "kpi"] and get:
        return api.kpi(claims, since=query.get("since", ["7d"])[0],
                       until=query.get("until", ["now"])[0])
    return error_answer(HTTPStatus.NOT_FOUND, "not_found", f"no such API: {request.method} "
                        f"{request.path}")


def caller(
    request: ApiRequest, *, authenticate: Callable[[str], Claims] | None, auth_required: bool,
) -> Claims | Answer:
    """Who is calling (the token's claims, or :data:`ANONYMOUS`), or the 401 answer why not."""
    query = parse_qs(request.query)
    token = None
    if request.authorization:
        scheme, _, value = request.authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return error_answer(HTTPStatus.UNAUTHORIZED, "unauthorized",
                                "the Authorization header must be 'Bearer <token>'")
        token = value.strip()
    elif query.get("token"):
        token = query["token"][-1]
    if token is None:
        if auth_required:
            return error_answer(HTTPStatus.UNAUTHORIZED, "unauthorized",
                                "this API requires a token (Authorization: Bearer <token>)")
        return ANONYMOUS if authenticate is None else ANONYMOUS_VIEWER
    if authenticate is None:
        return error_answer(HTTPStatus.UNAUTHORIZED, "unauthorized",
                            "this server checks no tokens (CITYHEART_TOKEN_SECRET is not set)")
    try:
        return authenticate(token)
    except TokenError as exc:
        log.info("dispatch API: token refused: %s", exc)
        return error_answer(HTTPStatus.UNAUTHORIZED, "unauthorized", f"token refused: {exc}")


def _json_body(body: bytes) -> dict[str, Any] | Answer:
    if len(body) > MAX_BODY:
        return error_answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "invalid",
                            f"the body is over {MAX_BODY} bytes")
    try:
        document = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        return error_answer(HTTPStatus.BAD_REQUEST, "invalid", f"the body is not JSON: {exc}")
    if not isinstance(document, dict):
        return error_answer(HTTPStatus.BAD_REQUEST, "invalid", "the body must be a JSON object")
    return document


def error_answer(status: HTTPStatus, code: str, detail: str) -> Answer:
    """An error answer: ``status`` and ``{"error": code, "detail": detail}``."""
    return status, {"error": code, "detail": detail}
