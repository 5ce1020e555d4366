"""The city's versioned HTTP API, ``/api/v1``: districts, devices, vital signs, history, alerts,
incidents and KPIs, in JSON or CSV, a page at a time.

    app.include_router(api_v1_router(site))      # site: a connectors.web_server.WebServer

The answers' common handling and paging are :mod:`connectors.api_answers`; the schemas
:mod:`connectors.api_schemas`; the queries :class:`connectors.storage.pages.Pages`.

Routes (every one answers HEAD too; the OpenAPI document at ``/openapi.json`` and
``/api/v1/openapi.json`` describes each with its parameters and schemas)::

    GET /api/v1/districts[/{id}]        districts with their GeoJSON (format=geojson too)
    GET /api/v1/devices                 devices seen, with their newest reading (and position)
    GET /api/v1/vitals, /indicators     the current vital signs and indicators per district
    GET /api/v1/history/readings        a kind's readings, resolution raw|minute|hour|day
    GET /api/v1/history/indicators      an indicator's values, the same resolutions
    GET /api/v1/alerts                  alerts, oldest first
    GET /api/v1/incidents[/{id}]        incidents, newest opened first; one incident
    GET /api/v1/incidents/{id}/events   one incident's events in order
    GET /api/v1/incidents/{id}/devices  the devices within its circle (or ``radius``)
    GET /api/v1/kpis                    department KPIs

Lists take ``limit`` (1-1000, default 100) and ``cursor`` (the previous page's
``next_cursor``, opaque); timed ones ``from``/``to`` (ISO 8601, or ``1h``-style durations ago).
Devices, raw readings, alerts and incidents also take one spatial filter, ``near=LAT,LON`` with
``radius=500m``, ``within=DISTRICT`` or ``bbox=S,W,N,E`` (:mod:`connectors.api_spatial`).
``format=json|csv`` or the Accept header chooses the format; a CSV page gives its next page in
``Link: <...>; rel="next"``. Callers are checked as on the dashboard's API
(:func:`connectors.http_api.caller`) and every item passes ``site.view`` (the feed's masking:
:func:`alerts.access.view`); a role that may see none of a list is answered 403.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from connectors.api_answers import collect, handle, storage_of
from connectors.api_format import ParameterError, decode_cursor, one_of, whole_number
from connectors.api_schemas import (
    COLUMNS,
    ITEMS,
    device_item,
    district_feature,
    district_item,
    envelope,
    responses,
)
from connectors.api_spatial import BboxQuery, NearQuery, RadiusQuery, WithinQuery, spatial_of
from connectors.storage.history import incident_record
from connectors.storage.pages import Pages
from connectors.tokens import Claims
from connectors.web_answers import openapi_document, send
from models.history import bucket_floor, choose_resolution, parse_time
from models.spatial import InvalidSpatialFilter, Near, parse_radius
from settings.incidents import SEVERITIES
from settings.indicators import INDICATORS

if TYPE_CHECKING:
    from connectors.web_server import WebServer

__all__ = ["RESOLUTIONS", "api_v1_router", "time_range"]

RESOLUTIONS = {"raw": "raw", "minute": "1m", "hour": "1h", "day": "1d"}
"""``resolution=`` values and the rollup each reads (no value: chosen from the range)."""

_Q = Annotated[str | None, Query()]
_LIST = ("json", "csv")
_GEOJSON_FC = {"type": "object", "required": ["type", "features"],
               "properties": {"type": {"const": "FeatureCollection"},
                              "features": {"type": "array"}}}
_GEOJSON_F = {"type": "object", "required": ["type", "geometry", "properties"],
              "properties": {"type": {"const": "Feature"}}}


def q(description: str) -> Any:
    """A string query parameter with ``description`` (checked by the route itself)."""
    return Query(description=description)


def api_v1_router(site: WebServer) -> APIRouter:
    """The ``/api/v1`` routes over ``site``'s settings, storage, masking and KPIs."""
    router = APIRouter(prefix="/api/v1")

    def get(path: str, name: str, schema: dict[str, Any], formats: tuple[str, ...] = _LIST,
            *, errors: tuple[int, ...] = (400, 401, 406, 503),
            geojson: dict[str, Any] | None = None) -> Callable[[Callable[..., Any]], Any]:
        def register(endpoint: Callable[..., Any]) -> Any:
            router.head(path, include_in_schema=False)(endpoint)
            return router.get(path, tags=["api v1"], name=name, responses=responses(
                schema, formats, geojson=geojson, errors=errors))(endpoint)
        return register

    def run(request: Request, name: str, produce: Callable[..., Any],
            formats: tuple[str, ...] = _LIST) -> Response:
        return handle(site, request, name, produce, formats, COLUMNS.get(name))

    @get("/districts", "districts", envelope(ITEMS["districts"]), ("json", "csv", "geojson"),
         geojson=_GEOJSON_FC)
    def districts(request: Request, format: _Q = None) -> Response:  # noqa: A002
        """The districts, each with its centroid and GeoJSON polygon (format=geojson: a
        FeatureCollection)."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            items = [district_item(d) for d in site.settings.districts]
            if _wants_geojson(request, query):
                features = [district_feature(i) for i in items]
                return {"type": "FeatureCollection", "features": features}
            return items, None
        return run(request, "districts", produce, ("json", "csv", "geojson"))

    @get("/districts/{district_id}", "district", ITEMS["districts"], ("json", "geojson"),
         errors=(400, 401, 404, 406, 503), geojson=_GEOJSON_F)
    def district(request: Request, district_id: Annotated[str, Path()],
                 format: _Q = None) -> Response:  # noqa: A002
        """One district with its GeoJSON polygon."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            found = [district_item(d) for d in site.settings.districts if d.id == district_id]
            if not found:
                return HTTPStatus.NOT_FOUND, {
                    "error": "not_found", "detail": f"no district {district_id!r}",
                    "parameter": "district_id", "valid": site.settings.district_ids()}
            return district_feature(found[0]) if _wants_geojson(request, query) else found[0]
        return run(request, "district", produce, ("json", "geojson"))

    @get("/devices", "devices", envelope(ITEMS["devices"]), errors=(400, 401, 403, 406, 503))
    def devices(request: Request, district: _Q = None, kind: _Q = None, near: NearQuery = None,
                radius: RadiusQuery = None, within: WithinQuery = None, bbox: BboxQuery = None,
                cursor: _Q = None, limit: _Q = None, format: _Q = None) -> Response:  # noqa: A002
        """The devices seen in the readings, each with its newest reading (and position when
        known: a spatial filter goes by it); not for viewers (device ids are not public)."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            if (refused := _no_device_ids(site, claims)) is not None:
                return refused
            fetch = _fetcher(_pages(site).devices, districts=_districts(site, query),
                             kinds=_kinds(site, query),
                             spatial=_where(site, claims, query, "vital"))
            return _collect(query, "devices", fetch, device_item)
        return run(request, "devices", produce)

    @get("/vitals", "vitals", envelope(ITEMS["vitals"]))
    def vitals(request: Request, district: _Q = None, kind: _Q = None,
               format: _Q = None) -> Response:  # noqa: A002
        """The newest vital sign (a window's aggregate) per district and kind."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            rows = _pages(site).latest(
                "vitals", districts=_districts(site, query) or site.settings.district_ids(),
                names=_kinds(site, query) or list(site.settings.kinds))
            return _shown(site, claims, "vital", rows), None
        return run(request, "vitals", produce)

    @get("/indicators", "indicators", envelope(ITEMS["indicators"]))
    def indicators(request: Request, district: _Q = None, indicator: _Q = None,
                   format: _Q = None) -> Response:  # noqa: A002
        """The newest value of each indicator per district."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            names = _many(query, "indicator", _indicator_ids(site)) or _indicator_ids(site)
            rows = _pages(site).latest(
                "indicators", names=names,
                districts=_districts(site, query) or site.settings.district_ids())
            return _shown(site, claims, "indicator", rows), None
        return run(request, "indicators", produce)

    @get("/history/readings", "readings", envelope(ITEMS["readings"]),
         errors=(400, 401, 403, 406, 503))
    def readings(request: Request, kind: Annotated[str | None, q("a kind, e.g. pm25")] = None,
                 district: _Q = None, resolution: _Q = None,
                 from_: Annotated[str | None, Query(alias="from")] = None,
                 to: _Q = None, near: NearQuery = None, radius: RadiusQuery = None,
                 within: WithinQuery = None, bbox: BboxQuery = None, cursor: _Q = None,
                 limit: _Q = None, format: _Q = None) -> Response:  # noqa: A002
        """A kind's readings over ``[from, to)``: raw (each device's) or per district in
        1-minute, 1-hour or 1-day buckets (mean, min, max, count); a spatial filter (by each
        reading's position) gives raw readings."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            name = _required(query, "kind", list(site.settings.kinds))
            return _series(site, claims, query, "kind", name, _pages(site).readings)
        return run(request, "readings", produce)

    @get("/history/indicators", "indicator_history", envelope(ITEMS["indicator_history"]))
    def indicator_history(
        request: Request, indicator: Annotated[str | None, q("an indicator, e.g. aqi")] = None,
        district: _Q = None, resolution: _Q = None,
        from_: Annotated[str | None, Query(alias="from")] = None, to: _Q = None,
        cursor: _Q = None, limit: _Q = None, format: _Q = None,  # noqa: A002
    ) -> Response:
        """An indicator's values over ``[from, to)``, raw or in buckets."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            name = _required(query, "indicator", _indicator_ids(site))
            return _series(site, claims, query, "indicator", name, _pages(site).indicators)
        return run(request, "indicator_history", produce)

    @get("/alerts", "alerts", envelope(ITEMS["alerts"]), errors=(400, 401, 403, 406, 503))
    def alerts(request: Request, district: _Q = None, kind: _Q = None, severity: _Q = None,
               from_: Annotated[str | None, Query(alias="from")] = None, to: _Q = None,
               near: NearQuery = None, radius: RadiusQuery = None, within: WithinQuery = None,
               bbox: BboxQuery = None, cursor: _Q = None, limit: _Q = None,
               format: _Q = None) -> Response:  # noqa: A002
        """Alerts raised in ``[from, to)`` (default the last 7 days), oldest first."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            if site.view is not None and site.view(claims, {"type": "alert", "departments": [
                    claims.department]}) is None:
                return _forbidden(f"role {claims.role!r} sees no raw alerts")
            since, until = time_range(site, query, default="7d")
            fetch = _fetcher(_pages(site).alerts, since=since, until=until,
                             districts=_districts(site, query), kinds=_kinds(site, query),
                             severities=_many(query, "severity", _SEVERITIES),
                             spatial=_where(site, claims, query, "alert"))
            return _collect(query, "alerts", fetch, _masker(site, claims, "alert"))
        return run(request, "alerts", produce)

    @get("/incidents", "incidents", envelope(ITEMS["incidents"]),
         errors=(400, 401, 403, 406, 503))
    def incidents(request: Request, district: _Q = None, state: _Q = None,
                  severity: _Q = None, from_: Annotated[str | None, Query(alias="from")] = None,
                  to: _Q = None, near: NearQuery = None, radius: RadiusQuery = None,
                  within: WithinQuery = None, bbox: BboxQuery = None, cursor: _Q = None,
                  limit: _Q = None, format: _Q = None) -> Response:  # noqa: A002
        """Incidents open at some time in ``[from, to)`` (default the last 7 days), newest
        opened first, as this caller may see them (a spatial filter goes by their centre)."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            since, until = time_range(site, query, default="7d")
            fetch = _fetcher(_pages(site).incidents, since=since, until=until,
                             districts=_districts(site, query),
                             states=_many(query, "state", _STATES),
                             severities=_many(query, "severity", _SEVERITIES),
                             spatial=_where(site, claims, query, "incident"))
            return _collect(query, "incidents", fetch, lambda row: _incident(site, claims, row))
        return run(request, "incidents", produce)

    @get("/incidents/{incident_id}", "incident", ITEMS["incidents"], ("json",),
         errors=(400, 401, 404, 406, 503))
    def incident(request: Request, incident_id: Annotated[str, Path()]) -> Response:
        """One incident as this caller may see it (404 if unknown or not the caller's)."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            return _one_incident(site, claims, incident_id)[0]
        return run(request, "incident", produce, ("json",))

    @get("/incidents/{incident_id}/events", "incident_events",
         envelope(ITEMS["incident_events"]), errors=(400, 401, 404, 406, 503))
    def incident_events(request: Request, incident_id: Annotated[str, Path()],
                        cursor: _Q = None, limit: _Q = None,
                        format: _Q = None) -> Response:  # noqa: A002
        """What was done about one incident, in order (masked as the incident is routed)."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            shown, routed = _one_incident(site, claims, incident_id)
            if isinstance(shown, tuple):
                return shown
            fetch = _fetcher(_pages(site).incident_events, incident_id=incident_id)

            def show(row: dict[str, Any]) -> dict[str, Any] | None:
                event = {k: v for k, v in row.items() if v is not None and k != "_raw"}
                visible = _view(site, claims, {**event, "type": "incident_event",
                                               "departments": routed})
                if visible is None:
                    return None
                visible.pop("type", None)
                visible["departments"] = event.get("departments") or []
                return visible
            return _collect(query, "incident_events", fetch, show)
        return run(request, "incident_events", produce)

    @get("/incidents/{incident_id}/devices", "incident_devices", envelope(ITEMS["devices"]),
         errors=(400, 401, 403, 404, 406, 503))
    def incident_devices(request: Request, incident_id: Annotated[str, Path()],
                         radius: RadiusQuery = None, kind: _Q = None, cursor: _Q = None,
                         limit: _Q = None, format: _Q = None) -> Response:  # noqa: A002
        """The devices near one incident: those whose newest position is within ``radius``
        of its centre (default: the incident's own circle), each with its newest reading;
        not for viewers."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            if (refused := _no_device_ids(site, claims)) is not None:
                return refused
            circle = _circle(site, claims, incident_id, query.get("radius"))
            if isinstance(circle, tuple):
                return circle
            fetch = _fetcher(_pages(site).devices, kinds=_kinds(site, query), spatial=circle)
            return _collect(query, "devices", fetch, device_item)
        return run(request, "incident_devices", produce)

    @get("/kpis", "kpis", envelope(ITEMS["kpis"]), errors=(400, 401, 403, 406, 503))
    def kpis(request: Request, from_: Annotated[str | None, Query(alias="from")] = None,
             to: _Q = None, format: _Q = None) -> Response:  # noqa: A002
        """Department KPIs over ``[from, to)`` (default the last 7 days): all for operators,
        their own for dispatchers, none for viewers."""
        def produce(claims: Claims, query: Mapping[str, str]) -> Any:
            time_range(site, query, default="7d")
            if site.api is None:
                return HTTPStatus.SERVICE_UNAVAILABLE, {
                    "error": "unavailable", "detail": "this server has no incident store"}
            status, document = site.api.kpi(claims, since=query.get("from", "7d"),
                                            until=query.get("to", "now"))
            if status != HTTPStatus.OK:
                return status, document
            return document["departments"], None
        return run(request, "kpis", produce)

    @router.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> Response:
        """The OpenAPI document (public, as ``/openapi.json``)."""
        return send(HTTPStatus.OK, "application/json",
                    orjson.dumps(openapi_document(request.app)))

    return router


_SEVERITIES = SEVERITIES
_STATES = ("open", "acknowledged", "dispatched", "resolved", "closed")  # alerts.lifecycle


def time_range(site: WebServer, query: Mapping[str, str], *, default: str) -> tuple[float, float]:
    """``from`` and ``to`` as epoch seconds (default ``default`` ago and now)."""
    now = site.clock()
    bounds = []
    for name, fallback in (("from", default), ("to", "now")):
        try:
            bounds.append(parse_time(query.get(name) or fallback, now=now))
        except ValueError as exc:
            raise ParameterError(name, str(exc)) from None
    if bounds[1] <= bounds[0]:
        msg = f"from {query.get('from', default)!r} must be before to {query.get('to', 'now')!r}"
        raise ParameterError("from", msg)
    return bounds[0], bounds[1]


def _series(site: WebServer, claims: Claims, query: Mapping[str, str], key: str, name: str,
            method: Callable[..., list[dict[str, Any]]]) -> Any:
    since, until = time_range(site, query, default="24h")
    chosen = query.get("resolution")
    level = (RESOLUTIONS[one_of("resolution", chosen, list(RESOLUTIONS))] if chosen
             else choose_resolution(since, until))
    where = {"spatial": _where(site, claims, query, "vital")} if key == "kind" else {}
    if where.get("spatial") is not None:
        if chosen and level != "raw":
            msg = "near, within and bbox filter raw readings: resolution=raw (or none)"
            raise ParameterError("resolution", msg, ["raw"])
        level = "raw"
    kind = f"{'readings' if key == 'kind' else 'indicators'}_raw" if level == "raw" else "rollup"
    since = bucket_floor(since, level)  # whole buckets, as /api/history gives them
    fetch = _fetcher(method, **{key: name}, districts=_districts(site, query), level=level,
                     since=since, until=until, **where)

    def show(row: dict[str, Any]) -> dict[str, Any] | None:
        return _view(site, claims, {"type": "vital", **row}, drop_type=True)
    return _collect(query, kind, fetch, show)


def _collect(query: Mapping[str, str], kind: str, fetch: Callable[..., Any],
             show: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Any:
    limit = whole_number("limit", query.get("limit"), default=100, low=1, high=1000)
    return collect(fetch, kind, decode_cursor(query.get("cursor"), kind), limit, show)


def _fetcher(method: Callable[..., list[dict[str, Any]]], **kwargs: Any) -> Callable[..., Any]:
    return lambda after, limit: method(after=after, limit=limit, **kwargs)


def _where(site: WebServer, claims: Claims, query: Mapping[str, str], kind: str) -> Any:
    """The spatial filter of ``query``; a 403 ParameterError when the caller may not see the
    positions of items of ``kind`` (asking by place would reveal them)."""
    spatial = spatial_of(site, query)
    if spatial is not None:
        probe = _view(site, claims, {"type": kind, "lat": 0.0, "lon": 0.0, "departments": [
            claims.department]})
        if probe is None or "lat" not in probe:
            raise ParameterError("near" if query.get("near") else "within" if query.get(
                "within") else "bbox", f"role {claims.role!r} sees no positions of {kind}s",
                status=HTTPStatus.FORBIDDEN, code="forbidden")
    return spatial


def _no_device_ids(site: WebServer, claims: Claims) -> tuple[HTTPStatus, dict[str, Any]] | None:
    """A 403 answer for a role that may not see device ids, else None."""
    probe = _view(site, claims, {"type": "vital", "device_id": "-"})
    if probe is None or "device_id" not in probe:
        return _forbidden(f"role {claims.role!r} sees no device ids")
    return None


def _circle(site: WebServer, claims: Claims, incident_id: str, radius: str | None) -> Any:
    """The circle around an incident this caller may see (its own radius unless ``radius``),
    or a 404 answer."""
    shown, _ = _one_incident(site, claims, incident_id)
    if isinstance(shown, tuple):
        return shown
    row = _storage(site).history.incident(incident_id) or {}
    if row.get("lat") is None or row.get("lon") is None:
        return HTTPStatus.NOT_FOUND, {"error": "not_found", "parameter": "incident_id",
                                      "detail": f"incident {incident_id!r} has no position"}
    try:
        metres = parse_radius(radius, "radius") if radius else float(row.get("radius_m") or 0)
    except InvalidSpatialFilter as exc:
        raise ParameterError("radius", str(exc)) from None
    return Near(float(row["lat"]), float(row["lon"]), metres)


def _one_incident(site: WebServer, claims: Claims, incident_id: str) -> tuple[Any, list[str]]:
    row = _storage(site).history.incident(incident_id)
    shown = None if row is None else _incident(site, claims, row)
    if shown is None:
        return (HTTPStatus.NOT_FOUND, {"error": "not_found",
                                       "detail": f"no incident {incident_id!r}",
                                       "parameter": "incident_id"}), []
    return shown, list(shown.get("departments") or [])


def _incident(site: WebServer, claims: Claims, row: Mapping[str, Any]) -> dict[str, Any] | None:
    record = incident_record({k: v for k, v in row.items() if k != "_raw"})
    return _view(site, claims, {"type": "incident", **record}, drop_type=True)


def _masker(site: WebServer, claims: Claims, kind: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: _view(site, claims, {"type": kind, **row}, drop_type=True)


def _view(site: WebServer, claims: Claims, message: Mapping[str, Any], *,
          drop_type: bool = False) -> dict[str, Any] | None:
    raw = message.get("_raw")
    visible = dict(message) if site.view is None else site.view(claims, message)
    if visible is None:
        return None
    if drop_type:
        visible.pop("type", None)
    if raw is not None:
        visible["_raw"] = raw
    return visible


def _shown(site: WebServer, claims: Claims, kind: str, rows: Sequence[dict[str, Any]]) -> list:
    shown = (_view(site, claims, {"type": kind, **row}, drop_type=True) for row in rows)
    return [{k: v for k, v in s.items() if k != "_raw"} for s in shown if s is not None]


def _forbidden(detail: str) -> tuple[HTTPStatus, dict[str, Any]]:
    return HTTPStatus.FORBIDDEN, {"error": "forbidden", "detail": detail}


def _storage(site: WebServer) -> Any:
    return storage_of(site)


def _pages(site: WebServer) -> Pages:
    storage = _storage(site)
    return Pages(storage.pool, postgis=storage.flavour.postgis)


def _required(query: Mapping[str, str], name: str, valid: list[str]) -> str:
    value = query.get(name)
    if not value:
        raise ParameterError(name, f"{name} is required: one of {valid}", valid)
    return one_of(name, value, valid)


def _many(query: Mapping[str, str], name: str, valid: Sequence[str]) -> list[str]:
    """A comma-separated filter, each value checked against ``valid``."""
    values = [v for v in (query.get(name) or "").split(",") if v]
    return [one_of(name, v, list(valid)) for v in values]


def _districts(site: WebServer, query: Mapping[str, str]) -> list[str]:
    return _many(query, "district", site.settings.district_ids())


def _kinds(site: WebServer, query: Mapping[str, str]) -> list[str]:
    return _many(query, "kind", list(site.settings.kinds))


def _indicator_ids(site: WebServer) -> list[str]:
    return list(INDICATORS)


def _wants_geojson(request: Request, query: Mapping[str, str]) -> bool:
    accept = request.headers.get("Accept") or ""
    return query.get("format") == "geojson" or (
        "format" not in query and "application/geo+json" in accept)

