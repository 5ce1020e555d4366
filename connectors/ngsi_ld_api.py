"""The city's current state and history as NGSI-LD (ETSI GS CIM 009), read-only, at ``/ngsi-ld/v1``.

    app.include_router(ngsi_ld_router(site))      # site: a connectors.web_server.WebServer

Routes::

    GET /ngsi-ld/v1/entities                query: id, idPattern, type, attrs, q, georel,
                                            geometry, coordinates, limit, offset, count,
                                            options=keyValues
    GET /ngsi-ld/v1/entities/{id}           one entity (404 ResourceNotFound)
    GET /ngsi-ld/v1/types                   the entity types served
    GET /ngsi-ld/v1/temporal/entities       history: type, id, attrs, q, timerel
                                            (before|after|between), timeAt, endTimeAt, lastN,
                                            options=temporalValues
    GET /ngsi-ld/v1/temporal/entities/{id}
    GET /ngsi-ld/v1/context.jsonld          the @context every entity names

The translation is :mod:`models.ngsi_ld` (entities) and :mod:`models.ngsi_ld_query` (filters);
this module reads the database (:class:`~connectors.storage.pages.Pages`), masks rows as
``/api/v1`` does (``site.view``) and answers. ``Accept: application/ld+json`` puts the
``@context`` in each entity; ``application/json`` gives it in a ``Link`` header. Errors are
ProblemDetails (``{"type", "title", "detail"}``) with the NGSI-LD error type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from connectors import ngsi_ld_data as data
from connectors.http_api import caller
from connectors.web_answers import api_request, send
from models.audit import count_districts
from models.errors import CityheartError
from models.ngsi_ld import ENTITY_TYPES, context_document, simplified
from models.ngsi_ld_query import QueryError, parse_geo, parse_q

if TYPE_CHECKING:
    from connectors.web_server import WebServer

__all__ = ["CONTEXT_PATH", "ngsi_ld_router"]

log = logging.getLogger(__name__)

CONTEXT_PATH = "/ngsi-ld/v1/context.jsonld"
_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
_LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
_Q = Annotated[str | None, Query()]
_ENTITY = {"type": "object", "required": ["id", "type"],
           "properties": {"id": {"type": "string"}, "type": {"type": "string"}}}
_PROBLEM = {"type": "object", "required": ["type", "title"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                           "detail": {"type": "string"}}}


class NgsiError(CityheartError):
    """Raised to answer a ProblemDetails: ``kind`` is the NGSI-LD error type's name."""

    def __init__(self, status: HTTPStatus, kind: str, detail: str) -> None:
        super().__init__(status, kind, detail)
        self.status, self.kind, self.detail = status, kind, detail

    def __str__(self) -> str:
        return self.detail


def ngsi_ld_router(site: WebServer) -> APIRouter:
    """The ``/ngsi-ld/v1`` routes over ``site``'s settings, storage and masking."""
    router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])

    def get(path: str, schema: dict[str, Any], *, slash: bool = False,
            errors: tuple[int, ...] = (400, 401, 503)) -> Callable[..., Any]:
        def register(endpoint: Callable[..., Any]) -> Any:
            for each in (path, f"{path}/") if slash else (path,):
                router.head(each, include_in_schema=False)(endpoint)
                router.get(each, include_in_schema=each == path,
                           responses=_responses(schema, errors))(endpoint)
            return endpoint
        return register

    @get("/context.jsonld", {"type": "object", "required": ["@context"]}, errors=())
    def context(request: Request) -> Response:
        """The JSON-LD @context of the served entities (no network needed to read them)."""
        return _send(HTTPStatus.OK, context_document(site.settings.kinds), request,
                     "application/ld+json")

    @get("/entities", {"type": "array", "items": _ENTITY}, slash=True)
    def entities(request: Request, id: _Q = None, idPattern: _Q = None,  # noqa: A002, N803
                 type: _Q = None, attrs: _Q = None, q: _Q = None,  # noqa: A002
                 georel: _Q = None, geometry: _Q = None, coordinates: _Q = None,
                 limit: _Q = None, offset: _Q = None, count: _Q = None,
                 options: _Q = None) -> Response:
        """Query entities (by id, type, q and geo-query), ``limit``/``offset`` pages;
        ``count=true`` gives the total in ``NGSILD-Results-Count``."""
        def produce(claims: Any, query: Mapping[str, str]) -> Response:
            found = _filtered(data.current(site, claims, *_wanted(query)), query)
            first = _number(query, "offset", 0, 0, 10**9)
            page = found[first:first + _number(query, "limit", 20, 0, 1000)]
            headers = {"NGSILD-Results-Count": str(len(found))} if query.get(
                "count") == "true" else {}
            return _entities(request, [_shaped(e, query) for e in page], headers)
        return _answer(site, request, produce)

    @get("/entities/{entity_id}", _ENTITY, errors=(400, 401, 404, 503))
    def entity(request: Request, entity_id: Annotated[str, Path()], attrs: _Q = None,
               options: _Q = None) -> Response:
        """One entity by id."""
        def produce(claims: Any, query: Mapping[str, str]) -> Response:
            found = data.current(site, claims, None, [entity_id])
            if not found:
                raise NgsiError(HTTPStatus.NOT_FOUND, "ResourceNotFound",
                                f"no entity {entity_id!r} (or not this caller's)")
            return _entities(request, _shaped(found[0], query), {})
        return _answer(site, request, produce)

    @get("/types", {"type": "object", "required": ["typeList"]}, errors=(401,))
    def types(request: Request) -> Response:
        """The entity types this server serves."""
        def produce(claims: Any, query: Mapping[str, str]) -> Response:
            document = {"id": "urn:ngsi-ld:EntityTypeList:cityheart", "type": "EntityTypeList",
                        "typeList": sorted(ENTITY_TYPES)}
            return _entities(request, document, {})
        return _answer(site, request, produce)

    @get("/temporal/entities", {"type": "array", "items": _ENTITY}, slash=True)
    def temporal(request: Request, id: _Q = None, type: _Q = None,  # noqa: A002
                 attrs: _Q = None, q: _Q = None, timerel: _Q = None,
                 timeAt: _Q = None, endTimeAt: _Q = None,  # noqa: N803
                 lastN: _Q = None, options: _Q = None, limit: _Q = None,  # noqa: N803
                 offset: _Q = None) -> Response:
        """Entities' history (vital-sign types): one instance per window, oldest first."""
        def produce(claims: Any, query: Mapping[str, str]) -> Response:
            types_, ids = _wanted(query)
            current = _filtered(data.current(site, claims, types_, ids, history_only=True),
                                query)
            first = _number(query, "offset", 0, 0, 10**9)
            chosen = current[first:first + _number(query, "limit", 20, 0, 100)]
            return _entities(request, [_temporal(site, claims, e, query) for e in chosen], {})
        return _answer(site, request, produce)

    @get("/temporal/entities/{entity_id}", _ENTITY, errors=(400, 401, 404, 503))
    def temporal_entity(request: Request, entity_id: Annotated[str, Path()], attrs: _Q = None,
                        timerel: _Q = None, timeAt: _Q = None,  # noqa: N803
                        endTimeAt: _Q = None, lastN: _Q = None,  # noqa: N803
                        options: _Q = None) -> Response:
        """One entity's history."""
        def produce(claims: Any, query: Mapping[str, str]) -> Response:
            found = data.current(site, claims, None, [entity_id], history_only=True)
            if not found:
                raise NgsiError(HTTPStatus.NOT_FOUND, "ResourceNotFound",
                                f"no temporal entity {entity_id!r}")
            return _entities(request, _temporal(site, claims, found[0], query), {})
        return _answer(site, request, produce)

    return router


def _answer(site: WebServer, request: Request,
            produce: Callable[[Any, Mapping[str, str]], Response]) -> Response:
    try:
        claims = caller(api_request(request), authenticate=site.authenticate,
                        auth_required=site.settings.auth.required)
        if isinstance(claims, tuple):
            raise NgsiError(claims[0], "NotAuthorized" if claims[0] == 401 else "BadRequestData",
                            claims[1]["detail"])
        response = produce(claims, dict(request.query_params))
        if site.audit is not None and response.status_code == HTTPStatus.OK and response.body:
            site.audit.record(claims, "ngsi-ld", request.url.path,
                              count_districts(orjson.loads(response.body)))
        return response
    except QueryError as exc:
        problem = NgsiError(HTTPStatus.BAD_REQUEST, "InvalidRequest", str(exc))
    except NgsiError as exc:
        problem = exc
    except CityheartError as exc:
        log.warning("ngsi-ld: %s: %s", request.url.path, exc)
        problem = NgsiError(HTTPStatus.SERVICE_UNAVAILABLE, "InternalError", str(exc))
    body = {"type": f"{_ERRORS}{problem.kind}", "title": problem.kind, "detail": problem.detail}
    return _send(problem.status, body, request, "application/json")


def _wanted(query: Mapping[str, str]) -> tuple[list[str] | None, list[str] | None]:
    types_ = [t for t in (query.get("type") or "").split(",") if t] or None
    ids = [i for i in (query.get("id") or "").split(",") if i] or None
    return types_, ids


def _filtered(found: list[dict[str, Any]], query: Mapping[str, str]) -> list[dict[str, Any]]:
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    if query.get("idPattern"):
        try:
            pattern = re.compile(query["idPattern"])
        except re.error as exc:
            raise QueryError("idPattern", f"not a regular expression: {exc}") from None
        tests.append(lambda e: bool(pattern.fullmatch(e["id"])))
    if query.get("q"):
        tests.append(parse_q(query["q"]))
    if query.get("georel"):
        if query.get("geoproperty", "location") != "location":
            raise QueryError("geoproperty", "only 'location' is a GeoProperty here")
        tests.append(parse_geo(query["georel"], query.get("geometry"), query.get("coordinates")))
    return [e for e in found if all(test(e) for test in tests)]


def _shaped(entity: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    attrs = [a for a in (query.get("attrs") or "").split(",") if a]
    if attrs:
        entity = {k: v for k, v in entity.items() if k in ("id", "type") or k in attrs}
    return simplified(entity) if "keyValues" in (query.get("options") or "") else entity


def _temporal(site: WebServer, claims: Any, entity: dict[str, Any],
              query: Mapping[str, str]) -> dict[str, Any]:
    try:
        return data.history(site, claims, entity, query)
    except ValueError as exc:
        raise NgsiError(HTTPStatus.BAD_REQUEST, "BadRequestData", str(exc)) from None


def _number(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise QueryError(name, f"{raw!r} must be a whole number from {low} to {high}")
    return int(raw)


def _entities(request: Request, body: Any, headers: dict[str, str]) -> Response:
    context = f"{str(request.base_url).rstrip('/')}{CONTEXT_PATH}"
    accept = request.headers.get("Accept") or ""
    if "application/ld+json" in accept:
        items = body if isinstance(body, list) else [body]
        for item in items:
            item["@context"] = context
        return _send(HTTPStatus.OK, body, request, "application/ld+json", headers)
    link = {"Link": f"<{context}>; {_LINK_REL}"}
    return _send(HTTPStatus.OK, body, request, "application/json", {**headers, **link})


def _send(status: int, body: Any, request: Request, content_type: str,
          headers: dict[str, str] | None = None) -> Response:
    response = send(status, content_type, orjson.dumps(body), head=request.method == "HEAD")
    response.headers.update(headers or {})
    return response


def _responses(schema: dict[str, Any], errors: tuple[int, ...]) -> dict[int | str, Any]:
    ok = {"application/ld+json": {"schema": schema}, "application/json": {"schema": schema}}
    answers: dict[int | str, Any] = {200: {"description": "OK", "content": ok}}
    for status in errors:
        answers[status] = {"description": HTTPStatus(status).phrase,
                           "content": {"application/json": {"schema": _PROBLEM}}}
    return answers
