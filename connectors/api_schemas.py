"""The JSON Schemas of ``/api/v1`` answers, as they appear in the OpenAPI document, and the
shape of the items built from settings and rows (districts, devices).

    responses(ITEMS["alerts"], formats=("json", "csv"))   # a route's ``responses=`` for FastAPI

Each list answer is ``{"items": [...], "next_cursor": str | null, "next": url | null}``; an item
schema lists the fields a caller may rely on (``required``) and the others it may get (masked
away for some roles, or added where known, such as ``lat``/``lon``). The CSV of a list has the
item schema's properties as its first columns (:data:`COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["COLUMNS", "ERROR", "ITEMS", "device_item", "district_feature", "district_item",
           "envelope", "responses"]

_STR = {"type": "string"}
_NUM = {"type": "number"}
_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_OPT_STR = {"type": ["string", "null"]}
_OPT_NUM = {"type": ["number", "null"]}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
_STRINGS = {"type": "array", "items": _STR}
_POSITION = {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2,
             "description": "[lon, lat] (WGS 84)"}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}}


ERROR = _object({"error": _STR, "detail": _STR},
                {"parameter": {"type": "string", "description": "the parameter at fault"},
                 "valid": {**_STRINGS, "description": "its valid values"}})
"""Every error answer: a code, a sentence, and the bad parameter with its valid values."""

_POLYGON = _object({"type": {"const": "Polygon"},
                    "coordinates": {"type": "array", "items": {"type": "array",
                                                               "items": _POSITION}}})
_SERIES_POINT = {"ts": _TIME, "district": _STR, "value": _NUM,
                 "min": _NUM, "max": _NUM, "count": _INT}

ITEMS: dict[str, dict[str, Any]] = {
    "districts": _object({"id": _STR, "name": _STR, "centroid": _POSITION,
                          "geometry": _POLYGON}),
    "devices": _object({"device_id": _STR, "district": _STR, "kind": _STR,
                        "last_seen": _TIME},
                       {"value": _NUM, "unit": _STR, "lat": _OPT_NUM, "lon": _OPT_NUM}),
    "vitals": _object({"district": _STR, "kind": _STR, "window_start": _TIME,
                       "window_end": _TIME, "mean": _NUM},
                      {"unit": _STR, "count": _INT, "min": _NUM, "max": _NUM, "last": _NUM,
                       "devices": _INT, "late": _INT, "emitted_at": _OPT_TIME}),
    "indicators": _object({"district": _STR, "indicator": _STR, "ts": _TIME, "value": _NUM},
                          {"level": _OPT_STR, "unit": _OPT_STR, "score": _OPT_NUM,
                           "window_start": _OPT_TIME, "inputs": {"type": ["integer", "null"]},
                           "coverage": _OPT_NUM, "confident": {"type": ["boolean", "null"]},
                           "components": {}, "details": {}, "emitted_at": _OPT_TIME}),
    "readings": _object(_SERIES_POINT, {"kind": _STR, "device_id": _STR, "unit": _STR,
                                        "seq": {"type": ["integer", "null"]}}),
    "indicator_history": _object(_SERIES_POINT, {"indicator": _STR, "level": _OPT_STR}),
    "alerts": _object({"id": _STR, "district": _STR, "kind": _STR, "severity": _STR,
                       "ts": _TIME},
                      {"rule": _STR, "value": _OPT_NUM, "threshold": _OPT_NUM,
                       "direction": _OPT_STR, "stat": _OPT_STR, "unit": _OPT_STR,
                       "window_start": _OPT_TIME, "window_end": _OPT_TIME,
                       "emitted_at": _OPT_TIME, "message": _STR, "details": {},
                       "departments": _STRINGS, "lat": _OPT_NUM, "lon": _OPT_NUM}),
    "incidents": _object({"id": _STR, "district": _STR, "state": _STR},
                         {"severity": _OPT_STR, "kind": _OPT_STR, "kinds": _STRINGS,
                          "title": _STR, "departments": _STRINGS, "opened_at": _TIME,
                          "updated_at": _TIME, "acknowledged_at": _OPT_TIME,
                          "resolved_at": _OPT_TIME, "closed_at": _OPT_TIME,
                          "outcome": _OPT_STR, "alert_count": _INT,
                          "escalation_level": _INT}),
    "incident_events": _object({"incident_id": _STR, "action": _STR, "ts": _TIME},
                               {"id": _STR, "sequence": _INT, "actor": _STR,
                                "comment": _OPT_STR, "departments": _STRINGS,
                                "details": {}}),
    "kpis": _object({"department": _STR}),
}
"""The schema of one item of each list."""

COLUMNS = {name: list(schema["properties"]) for name, schema in ITEMS.items()}
"""The first columns of each list's CSV."""


def envelope(item: dict[str, Any]) -> dict[str, Any]:
    """A page of ``item``: the items, the cursor of the next page and its URL (or nulls)."""
    return _object({"items": {"type": "array", "items": item}, "next_cursor": _OPT_STR,
                    "next": _OPT_STR})


def responses(
    schema: dict[str, Any], formats: tuple[str, ...] = ("json", "csv"), *,
    geojson: dict[str, Any] | None = None, errors: tuple[int, ...] = (400, 401, 406, 503),
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses``: 200 in each format, then the error answers it may give."""
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if "csv" in formats:
        content["text/csv"] = {"schema": {"type": "string"}}
    if geojson is not None:
        content["application/geo+json"] = {"schema": geojson}
    answers: dict[int | str, dict[str, Any]] = {200: {"description": "OK", "content": content}}
    for status in errors:
        answers[status] = {"description": _WHY[status],
                           "content": {"application/json": {"schema": ERROR}}}
    return answers


_WHY = {
    400: "a parameter is not valid: the body names it and its valid values",
    401: "no token where one is required, or a token refused",
    403: "this caller's role sees none of it",
    404: "no such item (or not this caller's)",
    406: "the Accept header takes none of the formats",
    503: "the database is away",
}


def district_item(district: Any) -> dict[str, Any]:
    """A district of the settings as the API shows it."""
    ring = [list(point) for point in district.polygon]
    return {"id": district.id, "name": district.name, "centroid": list(district.centroid),
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def district_feature(item: Mapping[str, Any]) -> dict[str, Any]:
    """A district item as a GeoJSON Feature."""
    return {"type": "Feature", "id": item["id"], "geometry": item["geometry"],
            "properties": {"name": item["name"], "centroid": item["centroid"]}}


def device_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A device of its newest readings row (``lat``/``lon`` when the row has them)."""
    device = {"device_id": row["device_id"], "district": row["district"], "kind": row["kind"],
              "last_seen": row["ts"], "value": row["value"], "unit": row["unit"]}
    for name in ("lat", "lon"):
        if row.get(name) is not None:
            device[name] = row[name]
    return device
