"""The dashboard's ASGI application (FastAPI): static files, ``/config.json`` and the API.

    app = build_app(site)          # site: a connectors.web_server.WebServer
    uvicorn.run(app)               # WebServer does this on its own thread

Routes, in the order they are tried::

    GET  /openapi.json              the API's OpenAPI document, generated from these routes
    GET  /config.json               what the page needs (connectors.web_config)
    GET  /api/history               a district's series, for charts (``site.history``)
    GET  /api/geo/districts         the districts as GeoJSON, for the map (connectors.web_geo)
    GET  /api/devices               the devices the map places (``site.devices``)
    GET  /api/whoami, /api/incidents, /api/incidents/{id}, /api/incidents/{id}/cap, /api/kpi
    POST /api/incidents, /api/incidents/{id}/actions   the dispatch API (connectors.http_api)
    GET, POST /api/suppressions, POST /api/suppressions/{id}/end   maintenance windows
    POST /api/reports               a report filed from the page's form (``site.reports``)
    GET  /api/v1/...                the documented API, JSON or CSV (connectors.api_v1)
    GET  /ngsi-ld/v1/...            the city as NGSI-LD entities (connectors.ngsi_ld_api)
    GET  /open-data/...             the open-data catalogue and downloads (connectors.open_data)
    GET  /ack?t=TOKEN, POST /ack    a notification's acknowledgement link (``site.ack``)
    *    /api/...                   anything else there: the API's own JSON 404 or 405
    GET  /...                       a file under ``site.static_dir``, else 404 (never outside it)

Every GET route answers HEAD too. The dispatch routes are declared here so that the OpenAPI
document lists them with their parameters; they all hand the request, as it came (raw path,
query string, Authorization, body), to :func:`connectors.http_api.answer`, so the answers,
status codes and error documents are the ones the API has always given. Every answer carries
the Content-Security-Policy and ``Cache-Control: no-cache``.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors import open_data_routes
from connectors.api_v1 import api_v1_router
from connectors.http_api import MAX_BODY, answer, caller, error_answer
from connectors.ngsi_ld_api import ngsi_ld_router
from connectors.tokens import Claims
from connectors.web_answers import (
    CONTENT_SECURITY_POLICY,
    api_request,
    openapi_document,
    raw_path,
    send,
)
from connectors.web_config import config_document
from connectors.web_geo import districts_geojson
from connectors.web_signin import content_security_policy
from models.audit import count_districts
from models.errors import CityheartError
from models.history import parse_time

if TYPE_CHECKING:
    from connectors.web_server import WebServer

__all__ = ["CONTENT_SECURITY_POLICY", "AckPages", "HistoryQuery", "HistoryView", "ReportDesk",
           "build_app", "openapi_document"]

log = logging.getLogger(__name__)

HistoryQuery = Callable[[str, str, str, float, float], dict[str, Any]]
"""(district, name, source, since, until) -> a JSON-ready series, for ``GET /api/history``."""

HistoryView = Callable[[Claims, dict[str, Any]], dict[str, Any]]
"""(caller, series) -> the series as the caller's role may see it."""


class AckPages(Protocol):
    """Answers acknowledgement links (cityheart.services.ack_links.AckLinks)."""

    def page(self, token: str) -> tuple[HTTPStatus, str]:
        """The confirmation page of a link: (status, HTML)."""
        ...

    def acknowledge(self, token: str) -> tuple[HTTPStatus, str]:
        """Acknowledge the link's incident: (status, HTML)."""
        ...


class ReportDesk(Protocol):
    """Files the page's reports (cityheart.services.report_filing.ReportFiling)."""

    async def file(self, claims: Claims, document: dict[str, Any]) -> tuple[HTTPStatus, Any]:
        """File a report as ``claims``; the status and the answer document."""
        ...

_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
          ".html": "text/html", ".svg": "image/svg+xml", ".json": "application/json",
          ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain"}
_READ_AT_MOST = 1 << 20   # of a body over MAX_BODY: read (and drop) this much before answering
_GET = ["GET", "HEAD"]
_OTHER_METHODS = ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]
_ERROR = {"type": "object", "required": ["error"],
          "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}
_ACTION_BODY = {
    "type": "object", "required": ["action"],
    "properties": {"action": {"type": "string", "description": "e.g. acknowledge (ack), "
                              "dispatch, comment, resolve, close"},
                   "comment": {"type": "string"}, "team": {"type": "string"},
                   "outcome": {"type": "string"},
                   "target": {"type": "string", "description": "assign: a person; transfer, "
                              "add_department: a department; link, merge: an incident id"},
                   "from_department": {"type": "string"}},
}
_WINDOW_BODY = {
    "type": "object", "required": ["districts"],
    "properties": {"districts": {"type": "array", "items": {"type": "string"}},
                   "devices": {"type": "array", "items": {"type": "string"}},
                   "kinds": {"type": "array", "items": {"type": "string"}},
                   "start": {"type": "string"}, "end": {"type": "string"},
                   "for": {"type": "string", "description": "a duration from start: 2h"},
                   "reason": {"type": "string"}, "id": {"type": "string"}},
}
_REPORT_BODY = {
    "type": "object", "required": ["kind", "title", "severity"],
    "properties": {"kind": {"type": "string"}, "title": {"type": "string"},
                   "severity": {"type": "string", "enum": ["warning", "critical", "emergency"]},
                   "district": {"type": "string"}, "lat": {"type": "number"},
                   "lon": {"type": "number"}, "description": {"type": "string"},
                   "reporter": {"type": "string"}},
}
_FILED_BODY = {
    "type": "object", "required": ["kind", "text"],
    "properties": {"kind": {"type": "string", "description": "one of the configured kinds"},
                   "text": {"type": "string"},
                   "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
                   "district": {"type": "string"}, "lat": {"type": "number"},
                   "lon": {"type": "number"},
                   "time": {"type": "string", "description": "ISO 8601 with a zone; default now"},
                   "attachments": {"type": "array", "items": {"type": "string"},
                                   "description": "http(s) URLs: references, never files"}},
}


def _json(status: int, document: Any, request: Request) -> Response:
    return send(status, "application/json", orjson.dumps(document),
                head=request.method == "HEAD")


async def _body(request: Request) -> bytes:
    """The body up to one byte over MAX_BODY (enough to refuse it), reading at most 1 MiB."""
    kept, seen = bytearray(), 0
    async for chunk in request.stream():
        seen += len(chunk)
        kept += chunk[: MAX_BODY + 1 - len(kept)]
        if seen >= _READ_AT_MOST:
            break
    return bytes(kept)


def build_app(site: WebServer) -> FastAPI:
    """The dashboard's routes over ``site``'s settings, files, history and dispatch API."""
    # FastAPI's own /openapi.json and /docs are off: the docs page loads scripts from a CDN,
    # and every answer here carries the headers send() gives it
    app = FastAPI(title="cityheart dashboard", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(_RequestLog)
    policy = content_security_policy(site.settings.auth.oidc)
    if policy != CONTENT_SECURITY_POLICY:  # the page may also reach the identity provider

        @app.middleware("http")
        async def signin_policy(request: Request, call_next: Any) -> Response:
            response: Response = await call_next(request)
            response.headers["Content-Security-Policy"] = policy
            return response

    def get(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A GET route that answers HEAD too (HEAD is left out of the OpenAPI document)."""
        def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            app.head(path, include_in_schema=False)(endpoint)
            return app.get(path, **options)(endpoint)
        return register

    @get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> Response:
        return _json(HTTPStatus.OK, openapi_document(app), request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        status, document = error_answer(HTTPStatus.BAD_REQUEST, "invalid", str(exc.errors()))
        return _json(status, document, request)

    def dispatch(request: Request, body: bytes = b"") -> Response:
        status, document = answer(api_request(request, body), site.api,
                                  authenticate=site.authenticate,
                                  auth_required=site.settings.auth.required)
        if request.method == "GET":
            audited(request, status, document)
        return _json(status, document, request)

    def audited(request: Request, status: int, document: Any) -> None:
        """Record a successful read in the audit: who, the route, records per district."""
        if site.audit is None or status != HTTPStatus.OK:
            return
        claims = caller(api_request(request), authenticate=site.authenticate,
                        auth_required=site.settings.auth.required)
        if not isinstance(claims, tuple):
            site.audit.record(claims, "api", request.url.path, count_districts(document))

    @get("/config.json", tags=["dashboard"])
    def config(request: Request) -> Response:
        """What the page needs to know about the city and where the feed is."""
        document = config_document(site.settings, site.dashboard,
                                   page_host=request.headers.get("Host"))
        return _json(HTTPStatus.OK, document, request)

    @get("/api/history", tags=["history"], responses=_errors(400, 401, 404, 503))
    def history(
        request: Request,
        district: Annotated[str | None, Query(description="a district id")] = None,
        name: Annotated[str | None, Query(description="a kind (pm25) or an indicator")] = None,
        source: Annotated[str | None, Query(description="readings or indicators")] = "readings",
        since: Annotated[str | None, Query(description="e.g. 1h, 7d or an ISO time")] = "1h",
        until: Annotated[str | None, Query(description="e.g. now or an ISO time")] = "now",
    ) -> Response:
        """A district's series at a resolution chosen from the range (raw, 1 min, 1 h, 1 day)."""
        status, document = _history(site, request)
        if request.method == "GET" and status == HTTPStatus.OK and site.audit is not None:
            claims = caller(api_request(request), authenticate=site.authenticate,
                            auth_required=site.settings.auth.required)
            if not isinstance(claims, tuple):
                points = len(document.get("points") or ())
                site.audit.record(claims, "api", request.url.path,
                                  {str(document.get("district")): points} if points else {})
        return _json(status, document, request)

    districts: list[dict[str, Any]] = []   # built on the first request, then kept

    @get("/api/geo/districts", tags=["map"], responses={200: {
        "description": "The districts as a GeoJSON FeatureCollection",
        "content": {"application/geo+json": {"schema": {"type": "object",
                                                        "required": ["type", "features"]}}}}})
    def geo_districts(request: Request) -> Response:
        """The districts as a GeoJSON FeatureCollection (whole geometries, with centroids)."""
        if not districts:
            districts.append(districts_geojson(site.settings))
        return send(HTTPStatus.OK, "application/geo+json", orjson.dumps(districts[0]),
                    head=request.method == "HEAD")

    @get("/api/devices", tags=["map"], responses=_errors(401, 403, 503))
    def devices(request: Request) -> Response:
        """The devices the map places, with their positions when known (not for viewers)."""
        status, document = _devices(site, request)
        return _json(status, document, request)

    @get("/api/whoami", tags=["dispatch"], responses=_errors(401, 404))
    def whoami(request: Request) -> Response:
        """The caller's role, department and subject."""
        return dispatch(request)

    @get("/api/incidents", tags=["dispatch"], responses=_errors(400, 401, 404, 503))
    def incidents(
        request: Request,
        state: Annotated[list[str] | None, Query(description="open, ... (repeatable)")] = None,
        limit: Annotated[str | None, Query(description="at most this many (to 5000)")] = "500",
    ) -> Response:
        """The incidents this caller may see, each with the actions it may take."""
        return dispatch(request)

    @get("/api/incidents/{incident_id}", tags=["dispatch"],
         responses=_errors(401, 404, 503))
    def incident(request: Request, incident_id: Annotated[str, Path()]) -> Response:
        """One incident with its event timeline (404 if unknown or not the caller's)."""
        return dispatch(request)

    @app.post("/api/incidents", tags=["dispatch"], status_code=201,
              responses=_errors(400, 401, 403, 409, 413, 422, 503),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": _REPORT_BODY}}}})
    async def create(request: Request) -> Response:
        """Open an incident from a report (a call, the field); 201, 403, 422, 503."""
        body = await _body(request)
        return await run_in_threadpool(dispatch, request, body)

    @get("/api/incidents/{incident_id}/cap", tags=["dispatch"],
         responses=_errors(401, 404, 503))
    def cap(request: Request, incident_id: Annotated[str, Path()]) -> Response:
        """The incident as a CAP 1.2 message (its XML in ``xml``)."""
        return dispatch(request)

    @app.post("/api/incidents/{incident_id}/actions", tags=["dispatch"],
              responses=_errors(400, 401, 403, 404, 405, 409, 413, 503),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": _ACTION_BODY}}}})
    async def act(request: Request, incident_id: Annotated[str, Path()]) -> Response:
        """Take an action; 403 forbidden, 404, 409 conflict, 413, 422 invalid, 503 flow away."""
        body = await _body(request)
        return await run_in_threadpool(dispatch, request, body)

    @get("/api/suppressions", tags=["suppressions"], responses=_errors(401, 403, 503))
    def suppressions(request: Request) -> Response:
        """The maintenance windows not ended yet (config.yaml's and those added at run time)."""
        return dispatch(request)

    @app.post("/api/suppressions", tags=["suppressions"], status_code=201,
              responses=_errors(400, 401, 403, 413, 422, 503),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": _WINDOW_BODY}}}})
    async def suppress(request: Request) -> Response:
        """Add a maintenance window (operators); 201, 403, 422, 503."""
        body = await _body(request)
        return await run_in_threadpool(dispatch, request, body)

    @app.post("/api/suppressions/{window_id}/end", tags=["suppressions"],
              responses=_errors(401, 403, 404, 503))
    async def end_suppression(request: Request, window_id: Annotated[str, Path()]) -> Response:
        """End a maintenance window added at run time, now (operators); 403, 404."""
        return await run_in_threadpool(dispatch, request, b"")

    @app.post("/api/reports", tags=["reports"], status_code=202,
              responses=_errors(400, 401, 403, 404, 413, 422, 503),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": _FILED_BODY}}}})
    async def file_report(request: Request) -> Response:
        """File a report (operators, dispatchers; the reporter is the caller); 202 once Kafka
        has it, 403, 422 what is wrong, 503 Kafka away."""
        status, document = await _file_report(site, request, await _body(request))
        return _json(status, document, request)

    @get("/api/kpi", tags=["dispatch"], responses=_errors(400, 401, 403, 404, 503))
    def kpi(
        request: Request,
        since: Annotated[str | None, Query(description="e.g. 7d or an ISO time")] = "7d",
        until: Annotated[str | None, Query(description="e.g. now or an ISO time")] = "now",
    ) -> Response:
        """Department KPIs this caller may see."""
        return dispatch(request)

    if site.open_data is not None:
        open_data_routes.register(app, site.open_data, _json)
    app.include_router(api_v1_router(site))
    app.include_router(ngsi_ld_router(site))

    @app.api_route("/api/{rest:path}", methods=["GET", "HEAD", "POST"],
                   include_in_schema=False)
    async def other_api(request: Request, rest: str) -> Response:
        body = await _body(request) if request.method == "POST" else b""
        return await run_in_threadpool(dispatch, request, body)

    @get("/ack", include_in_schema=False)
    def ack_page(request: Request, t: str = "") -> Response:
        if site.ack is None:
            return send(HTTPStatus.NOT_FOUND, "text/plain", b"no acknowledgement links here\n")
        status, page = site.ack.page(t)
        return send(status, "text/html; charset=utf-8", page.encode(),
                    head=request.method == "HEAD")

    @app.post("/ack", include_in_schema=False)
    async def ack(request: Request) -> Response:
        if site.ack is None:
            return send(HTTPStatus.NOT_FOUND, "text/plain", b"no acknowledgement links here\n")
        form = parse_qs((await _body(request)).decode(errors="replace"))
        token = (form.get("t") or [request.query_params.get("t", "")])[0]
        status, page = await run_in_threadpool(site.ack.acknowledge, token)
        return send(status, "text/html; charset=utf-8", page.encode())

    @app.api_route("/{rest:path}", methods=_GET, include_in_schema=False)
    def static(request: Request, rest: str) -> Response:
        path = raw_path(request)
        file = site.resolve(path)
        if file is None:
            return send(HTTPStatus.NOT_FOUND, "text/plain", f"no such page: {path}\n".encode(),
                        head=request.method == "HEAD")
        content_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
        return send(HTTPStatus.OK, content_type or "application/octet-stream", file.read_bytes(),
                    head=request.method == "HEAD")

    @app.post("/{rest:path}", include_in_schema=False)
    def not_here(rest: str) -> Response:
        return send(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", b"GET only here\n")

    @app.api_route("/{rest:path}", methods=_OTHER_METHODS, include_in_schema=False)
    def unsupported(request: Request, rest: str) -> Response:
        text = f"unsupported method {request.method!r}\n".encode()
        return send(HTTPStatus.NOT_IMPLEMENTED, "text/plain", text)

    return app


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a dashboard route may give, for its OpenAPI ``responses``."""
    return {status: {"description": HTTPStatus(status).phrase,
                     "content": {"application/json": {"schema": _ERROR}}}
            for status in statuses}


def _history(site: WebServer, request: Request) -> tuple[HTTPStatus, Any]:
    """``GET /api/history``'s status and document (see WebServer)."""
    if site.history is None:
        return HTTPStatus.NOT_FOUND, {"error": "no history database is configured"}
    claims = caller(api_request(request), authenticate=site.authenticate,
                    auth_required=site.settings.auth.required)
    if isinstance(claims, tuple):
        return claims
    query = parse_qs(request.scope["query_string"].decode("latin-1"))

    def one(name: str, default: str | None = None) -> str | None:
        return query.get(name, [default])[0]

    district, name = one("district"), one("name")
    source = one("source", "readings") or "readings"
    if not district or not name or source not in ("readings", "indicators"):
        return HTTPStatus.BAD_REQUEST, {
            "error": "district and name are required; source is readings or indicators"}
    now = site.clock()
    try:
        since = parse_time(one("since", "1h") or "1h", now=now)
        until = parse_time(one("until", "now") or "now", now=now)
        document = site.history(district, name, source, since, until)
        if site.history_view is not None:
            document = site.history_view(claims, document)
    except PermissionError as exc:  # the caller's grant does not cover this series
        return HTTPStatus.FORBIDDEN, {"error": str(exc)}
    except ValueError as exc:
        return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
    except CityheartError as exc:
        log.warning("dashboard: history unavailable: %s", exc)
        return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}
    return HTTPStatus.OK, document


async def _file_report(site: WebServer, request: Request, body: bytes) -> tuple[HTTPStatus, Any]:
    """``POST /api/reports``'s status and document."""
    if site.reports is None:
        return error_answer(HTTPStatus.NOT_FOUND, "not_found", "this server takes no reports")
    claims = caller(api_request(request, body), authenticate=site.authenticate,
                    auth_required=site.settings.auth.required)
    if isinstance(claims, tuple):
        return claims
    if len(body) > MAX_BODY:
        return error_answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "invalid",
                            f"the body is over {MAX_BODY} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return error_answer(HTTPStatus.BAD_REQUEST, "invalid", f"the body is not JSON: {exc}")
    if not isinstance(document, dict):
        return error_answer(HTTPStatus.BAD_REQUEST, "invalid", "a report is one JSON object")
    return await site.reports.file(claims, document)


def _devices(site: WebServer, request: Request) -> tuple[HTTPStatus, Any]:
    """``GET /api/devices``'s status and document."""
    claims = caller(api_request(request), authenticate=site.authenticate,
                    auth_required=site.settings.auth.required)
    if isinstance(claims, tuple):
        return claims
    if claims.role == "viewer":
        return error_answer(HTTPStatus.FORBIDDEN, "forbidden",
                            "devices are for operators and dispatchers, not viewers")
    if claims.role == "consumer" and (claims.rules is None or claims.rules.detail != "raw"):
        return error_answer(HTTPStatus.FORBIDDEN, "forbidden",
                            f"grant {claims.grant!r} does not include device ids")
    try:
        found = site.devices() if site.devices is not None else []
    except CityheartError as exc:
        log.warning("dashboard: devices unavailable: %s", exc)
        return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}
    return HTTPStatus.OK, {"devices": found}


class _RequestLog:
    """Logs each request at debug level, without its query (it may carry ``?token=``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, sending)
        client = scope.get("client") or ("-", 0)
        log.debug("dashboard: %s %s %s %s", client[0], scope["method"], scope["path"],
                  status[0] if status else "-")
