"""How ``/api/v1`` answers: the common handling of its routes, pages in JSON or CSV, and paging
past rows a caller may not see. :mod:`connectors.api_v1` declares the routes around it::

    handle(site, request, "alerts", produce, ("json", "csv"), columns)
    collect(fetch, "alerts", after, limit, show)     # (items, next cursor or None)

A route's ``produce(claims, query)`` returns a page ``(items, cursor)``, one document, a
``(status, document)`` answer or a Response; ``handle`` checks the caller first
(:func:`connectors.http_api.caller`) and renders ParameterError as its 400/406 document and
other CityheartErrors (the database away) as 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import Response

from connectors.api_format import (
    FORMAT_TYPES,
    ParameterError,
    choose_format,
    csv_bytes,
    encode_cursor,
)
from connectors.http_api import caller
from connectors.storage.pages import key_of
from connectors.tokens import Claims
from connectors.web_answers import api_request, send
from models.audit import count_districts
from models.errors import CityheartError

if TYPE_CHECKING:
    from connectors.web_server import WebServer

__all__ = ["MessageView", "Page", "collect", "handle", "page_answer", "storage_of"]

log = logging.getLogger(__name__)

MessageView = Callable[[Claims, Mapping[str, Any]], dict[str, Any] | None]
"""(caller, message with a ``type``) -> what this caller may see of it, or None."""

Page = tuple[list[dict[str, Any]], str | None]
"""A page's items and the cursor of the next one (None on the last)."""


def handle(
    site: WebServer, request: Request, route: str,
    produce: Callable[[Claims, Mapping[str, str]], Any], formats: tuple[str, ...],
    columns: list[str] | None,
) -> Response:
    """Authenticate, run ``produce``, render: the common part of every route."""
    head = request.method == "HEAD"
    query = dict(request.query_params)
    try:
        fmt = choose_format(query.get("format"), request.headers.get("Accept"), formats)
        claims = caller(api_request(request), authenticate=site.authenticate,
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
    if site.audit is not None and not head:
        shown = result if isinstance(result, dict) else result[0]
        site.audit.record(claims, "api", request.url.path, count_districts(shown))
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


def _json(status: int, document: Any, head: bool) -> Response:
    return _send(status, "application/json", orjson.dumps(document), head)


def _send(
    status: int, content_type: str, data: bytes, head: bool,
    headers: dict[str, str] | None = None,
) -> Response:
    response = send(status, content_type, data, head=head)
    response.headers.update(headers or {})
    return response


def storage_of(site: WebServer) -> Any:
    """``site``'s Storage; a 503 ParameterError when it has no database configured."""
    if site.storage is None:
        raise ParameterError("database", "this server has no history database configured",
                             status=HTTPStatus.SERVICE_UNAVAILABLE, code="unavailable")
    return site.storage()
