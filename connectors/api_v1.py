"""The city's versioned HTTP API, ``/api/v1``: districts, devices, vital signs, history, alerts,
incidents and KPIs, in JSON or CSV, a page at a time.

    app.include_router(api_v1_router(site))      # site: a connectors.web_server.WebServer

Routes (every one answers HEAD too; the OpenAPI document at ``/openapi.json`` and
``/api/v1/openapi.json`` describes each with its parameters and schemas)::

    GET /api/v1/districts[/{id}]        districts with their GeoJSON (format=geojson too)
    GET /api/v1/devices                 devices seen, with their newest reading
    GET /api/v1/vitals, /indicators     the current vital signs and indicators per district
    GET /api/v1/history/readings        a kind's readings, resolution raw|minute|hour|day
    GET /api/v1/history/indicators      an indicator's values, the same resolutions
    GET /api/v1/alerts                  alerts, oldest first
    GET /api/v1/incidents[/{id}]        incidents, newest opened first; one with its events
    GET /api/v1/incidents/{id}/events   one incident's events in order
    GET /api/v1/kpis                    department KPIs

Lists take ``limit`` (1-1000, default 100) and ``cursor`` (the previous page's
``next_cursor``, opaque); timed ones ``from``/``to`` (ISO 8601, or ``1h``-style durations ago).
``format=json|csv`` or the Accept header chooses the format; a CSV page gives its next page in
``Link: <...>; rel="next"``. Callers are checked as on the dashboard's API
(:func:`connectors.http_api.caller`) and every item passes ``site.view`` (the feed's masking:
:func:`alerts.access.view`); a role that may see none of a list is answered 403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from connectors import api_routes
from connectors.api_format import FORMAT_TYPES, ParameterError, choose_format, csv_bytes
from connectors.http_api import ApiRequest, caller
from connectors.storage.pages import key_of
from connectors.tokens import Claims
from models.errors import CityheartError

if TYPE_CHECKING:
    from connectors.web_server import WebServer

__all__ = ["Page", "api_v1_router", "page_answer"]

log = logging.getLogger(__name__)

MessageView = Callable[[Claims, Mapping[str, Any]], dict[str, Any] | None]
"""(caller, message with a ``type``) -> what this caller may see of it, or None."""

Page = tuple[list[dict[str, Any]], str | None]
"""A page's items and the cursor of the next one (None on the last)."""


def api_v1_router(site: WebServer) -> APIRouter:
    """The ``/api/v1`` routes over ``site``'s settings, storage, masking and KPIs."""
    router = APIRouter(prefix="/api/v1")
    api_routes.declare(router, site, _handle)
    return router


def _handle(
    site: WebServer, request: Request, route: str,
    produce: Callable[[Claims, Mapping[str, str]], Any], formats: tuple[str, ...],
    columns: list[str] | None,
) -> Response:
    """Authenticate, run ``produce``, render: the common part of every route."""
    head = request.method == "HEAD"
    query = dict(request.query_params)
    try:
        fmt = choose_format(query.get("format"), request.headers.get("Accept"), formats)
        claims = caller(_api_request(request), authenticate=site.authenticate,
                        auth_required=site.settings.auth.required)
        if isinstance(claims, tuple):
            return _json(claims[0], claims[1], head)
        result = produce(claims, query)
    except ParameterError as exc:
        return _json(exc.status, exc.document(), head)
    except CityheartError as exc:
        log.warning("api v1: %s: %s", route, exc)
        return _json(HTTPStatus.SERVICE_UNAVAILABLE,
                     {"error": "unavailable", "detail": str(exc)}, head)
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple) and isinstance(result[0], HTTPStatus):
        return _json(result[0], result[1], head)
    return page_answer(request, result, fmt, columns, head=head)


def page_answer(
    request: Request, result: Page | dict[str, Any], fmt: str, columns: list[str] | None, *,
    head: bool = False,
) -> Response:
    """A page (or one document) in ``fmt``, with the next page's URL."""
    if isinstance(result, dict):
        return _send(HTTPStatus.OK, FORMAT_TYPES[fmt], orjson.dumps(result), head)
    items, cursor = result
    next_url = None
    if cursor is not None:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        next_url = f"{request.url.path}?{urlencode({**params, 'cursor': cursor})}"
    if fmt == "csv":
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
        return _send(HTTPStatus.OK, "text/csv", csv_bytes(items, columns or []), head,
                     headers)
    body = {"items": items, "next_cursor": cursor, "next": next_url}
    return _send(HTTPStatus.OK, FORMAT_TYPES[fmt], orjson.dumps(body), head)


def collect(
    fetch: Callable[[list[Any] | None, int], list[dict[str, Any]]], kind: str,
    after: list[Any] | None, limit: int,
    show: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> Page:
    """Up to ``limit`` shown items after ``after``, reading on past the ones ``show`` hides
    (None); the cursor is the last shown row's key when more are shown after it."""
    from connectors.api_format import encode_cursor

    items: list[dict[str, Any]] = []
    last: list[Any] | None = None
    while True:
        rows = fetch(after, limit + 1)
        for row in rows:
            shown = show(row)
            if shown is None:
                continue
            if len(items) == limit:
                return items, encode_cursor(kind, last or [])
            shown.pop("_raw", None)
            items.append(shown)
            last = key_of(kind, row)
        if len(rows) < limit + 1:
            return items, None
        after = key_of(kind, rows[-1])


def _api_request(request: Request) -> ApiRequest:
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    return ApiRequest(request.method, path, request.scope["query_string"].decode("latin-1"),
                      request.headers.get("Authorization"))


def _json(status: int, document: Any, head: bool) -> Response:
    return _send(status, "application/json", orjson.dumps(document), head)


def _send(
    status: int, content_type: str, data: bytes, head: bool,
    headers: dict[str, str] | None = None,
) -> Response:
    from connectors.web_app import send

    response = send(status, content_type, data, head=head)
    response.headers.update(headers or {})
    return response
