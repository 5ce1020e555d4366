"""What ``/ngsi-ld/v1`` reads: the database rows behind each entity type, masked, translated.

    current(site, claims, ["AirQualityObserved"], None)    # entities, by id
    history(site, claims, entity, {"timerel": "after", "timeAt": "2026-12-07T00:00:00Z"})

Vital-sign types come from the newest ``vitals`` (current) and the ``vitals`` table (history);
``Device`` from the readings (callers whose view keeps device ids only); ``Alert`` from the
alerts of the last :data:`ALERT_WINDOW_S`. Every row passes ``site.view`` first, as in
``/api/v1``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from connectors.api_answers import storage_of
from connectors.storage.pages import Pages, key_of
from connectors.tokens import Claims
from models.history import parse_time
from models.ngsi_ld import (
    ENTITY_TYPES,
    KindInfo,
    alert_entity,
    device_entity,
    model_of,
    parse_entity_id,
    temporal_entity,
    vital_entities,
)

if TYPE_CHECKING:
    from connectors.web_server import WebServer

__all__ = ["ALERT_WINDOW_S", "current", "history"]

ALERT_WINDOW_S = 86400.0
"""Alerts raised this long ago or less are current."""

_BATCH = 1000
_MAX_ROWS = 100_000


def current(
    site: WebServer, claims: Claims, types: list[str] | None, ids: list[str] | None, *,
    history_only: bool = False,
) -> list[dict[str, Any]]:
    """The entities of ``types`` (None: all) with one of ``ids`` (None: any), by id."""
    wanted = _types(types)
    if ids is not None:
        parsed = [p for p in (parse_entity_id(i) for i in ids) if p is not None]
        wanted &= {t for t, _ in parsed}
    vital_types = {model_of(k)[0] for k in site.settings.kinds}
    if history_only:
        wanted &= vital_types
    found: list[dict[str, Any]] = []
    if wanted & vital_types:
        found += _vital_entities(site, claims, wanted & vital_types)
    if "Device" in wanted:
        found += _devices(site, claims)
    if "Alert" in wanted:
        found += _alerts(site, claims)
    if ids is not None:
        found = [e for e in found if e["id"] in ids]
    return sorted(found, key=lambda e: e["id"])


def history(
    site: WebServer, claims: Claims, entity: Mapping[str, Any], query: Mapping[str, str],
) -> dict[str, Any]:
    """The temporal representation of a vital-sign ``entity`` over the query's time range."""
    entity_type, district = parse_entity_id(entity["id"]) or ("", "")
    attrs = {a for a in (query.get("attrs") or "").split(",") if a}
    kinds = {k: model_of(k)[1] for k in site.settings.kinds
             if model_of(k)[0] == entity_type and (not attrs or model_of(k)[1] in attrs)}
    since, until = _time_range(site, query)
    last_n = query.get("lastN")
    if last_n is not None and not (last_n.isdigit() and int(last_n) > 0):
        msg = f"lastN {last_n!r} must be a whole number above 0"
        raise ValueError(msg)
    series: dict[str, list[tuple[str, float, str | None]]] = {a: [] for a in kinds.values()}
    if kinds:
        pages = _pages(site)
        rows = _all(lambda after, limit: pages.vitals(districts=[district], kinds=list(kinds),
                                                      since=since, until=until, after=after,
                                                      limit=limit), "vitals")
        for row in rows:
            shown = _view(site, claims, "vital", row)
            if shown is not None:
                series[kinds[row["kind"]]].append((row["window_end"], row["mean"], row["unit"]))
    if last_n is not None:
        series = {a: points[-int(last_n):] for a, points in series.items()}
    values_only = "temporalValues" in (query.get("options") or "")
    return temporal_entity(entity["id"], entity["type"], series, values_only=values_only)


def _types(types: list[str] | None) -> set[str]:
    if types is None:
        return set(ENTITY_TYPES)
    by_iri = {iri: name for name, iri in ENTITY_TYPES.items()}
    return {by_iri.get(t, t) for t in types} & set(ENTITY_TYPES)


def _vital_entities(site: WebServer, claims: Claims, types: set[str]) -> list[dict[str, Any]]:
    names = [k for k in site.settings.kinds if model_of(k)[0] in types]
    rows = _pages(site).latest("vitals", districts=site.settings.district_ids(), names=names)
    shown = [s for s in (_view(site, claims, "vital", r) for r in rows) if s is not None]
    kinds = {k: KindInfo(k, kind.unit) for k, kind in site.settings.kinds.items()}
    return vital_entities(shown, kinds, _centroids(site))


def _devices(site: WebServer, claims: Claims) -> list[dict[str, Any]]:
    probe = _view(site, claims, "vital", {"device_id": "-"})
    if probe is None or "device_id" not in probe:
        return []
    pages = _pages(site)
    centroids = _centroids(site)
    entities = []
    for row in _all(lambda after, limit: pages.devices(after=after, limit=limit), "devices"):
        device = {"device_id": row["device_id"], "district": row["district"],
                  "kind": row["kind"], "last_seen": row["ts"], "value": row["value"],
                  "unit": row["unit"], "lat": row.get("lat"), "lon": row.get("lon")}
        entities.append(device_entity(device, centroids))
    return entities


def _alerts(site: WebServer, claims: Claims) -> list[dict[str, Any]]:
    now = site.clock()
    pages = _pages(site)
    centroids = _centroids(site)
    rows = _all(lambda after, limit: pages.alerts(since=now - ALERT_WINDOW_S, until=now + 60,
                                                  after=after, limit=limit), "alerts")
    shown = (_view(site, claims, "alert", row) for row in rows)
    return [alert_entity(s, centroids) for s in shown if s is not None]


def _all(fetch: Any, kind: str) -> Iterator[dict[str, Any]]:
    after, seen = None, 0
    while seen < _MAX_ROWS:
        rows = fetch(after, _BATCH)
        yield from rows
        seen += len(rows)
        if len(rows) < _BATCH:
            return
        after = key_of(kind, rows[-1])


def _view(site: WebServer, claims: Claims, kind: str,
          row: Mapping[str, Any]) -> dict[str, Any] | None:
    message = {k: v for k, v in row.items() if k != "_raw"}
    if site.view is None:
        return message
    return site.view(claims, {"type": kind, **message})


def _time_range(site: WebServer, query: Mapping[str, str]) -> tuple[float, float]:
    now = site.clock()
    relation = query.get("timerel")
    at = query.get("timeAt")
    if relation is None:
        return now - 86400.0, now + 1.0
    if relation not in ("before", "after", "between"):
        msg = f"timerel {relation!r} is not one of ['before', 'after', 'between']"
        raise ValueError(msg)
    if not at:
        msg = f"timerel={relation} needs timeAt"
        raise ValueError(msg)
    moment = parse_time(at, now=now)
    if relation == "before":
        return 0.0, moment
    if relation == "after":
        return moment, now + 1.0
    end = query.get("endTimeAt")
    if not end:
        msg = "timerel=between needs endTimeAt"
        raise ValueError(msg)
    return moment, parse_time(end, now=now)


def _centroids(site: WebServer) -> dict[str, tuple[float, float]]:
    return {d.id: (float(d.centroid[0]), float(d.centroid[1])) for d in site.settings.districts}


def _pages(site: WebServer) -> Pages:
    return Pages(storage_of(site).pool)
