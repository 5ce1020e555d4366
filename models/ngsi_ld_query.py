"""NGSI-LD query filters over entities, pure: the ``q`` language and geo-queries.

    match = parse_q('pm25>35;areaServed=="old-town"')     # QueryError when it does not parse
    match(entity)                                        # True / False
    near = parse_geo("near;maxDistance==2000", "Point", "[11.565,48.14]")
    near(entity)                                         # by its ``location``

``q``: terms joined by ``;`` (and) and ``|`` (or; ``;`` binds tighter), each ``attr``
(present), or ``attr<op>value`` with ``==``, ``!=``, ``>``, ``>=``, ``<``, ``<=`` or ``~=``
(regular expression); ``attr`` may go into a value's keys with dots (``address.city``).
Values are numbers, ``"strings"``, ``true``/``false``, lists ``a,b`` (``==``: any of them) and
ranges ``a..b`` (``==``: within). Comparisons between a number and a string never hold.

Geo-queries (``georel``): ``near;maxDistance==M`` / ``near;minDistance==M`` (metres, great
circle, to a Point), ``within``, ``intersects`` and ``disjoint`` (a Polygon or MultiPolygon),
``equals`` (a Point); entities without a point ``location`` never match.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from models.errors import CityheartError

__all__ = ["EARTH_RADIUS_M", "GEORELS", "QueryError", "distance_m", "inside", "parse_geo",
           "parse_q"]

EARTH_RADIUS_M = 6_371_008.8
GEORELS = ("near", "within", "intersects", "disjoint", "equals")

Match = Callable[[Mapping[str, Any]], bool]
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}
_TERM = re.compile(r"^\s*([A-Za-z_@][\w.@:\[\]-]*)\s*(==|!=|>=|<=|~=|>|<)?\s*(.*?)\s*$", re.S)


class QueryError(CityheartError):
    """Raised when a query parameter does not parse; names the parameter and why."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(parameter, reason)
        self.parameter = parameter
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.parameter}: {self.reason}"


def parse_q(text: str) -> Match:
    """The predicate of an NGSI-LD ``q`` expression (see module doc)."""
    alternatives = [[_term(t) for t in _split(part, ";")] for part in _split(text, "|")]
    return lambda entity: any(all(term(entity) for term in terms) for terms in alternatives)


def parse_geo(georel: str, geometry: str | None, coordinates: str | None) -> Match:
    """The predicate of a geo-query on an entity's ``location`` (see module doc)."""
    parts = [p.strip() for p in georel.split(";")]
    relation = parts[0]
    if relation not in GEORELS:
        raise QueryError("georel", f"{relation!r} is not one of {list(GEORELS)}")
    if not geometry or coordinates is None:
        raise QueryError("geometry", "a geo-query needs geometry and coordinates")
    try:
        coords = json.loads(coordinates)
    except ValueError:
        raise QueryError("coordinates", f"{coordinates!r} is not a JSON array") from None
    if relation in ("near", "equals"):
        point = _lon_lat(geometry, coords)
        if relation == "equals":
            return lambda e: _at(e) is not None and _at(e) == point
        bound, limit = _distance_bound(parts[1:])

        def near(entity: Mapping[str, Any]) -> bool:
            at = _at(entity)
            return at is not None and bound(distance_m(at, point), limit)
        return near
    polygons = _polygons(geometry, coords)

    def within(entity: Mapping[str, Any]) -> bool:
        at = _at(entity)
        return at is not None and any(inside(at, polygon) for polygon in polygons)
    if relation == "disjoint":
        return lambda e: _at(e) is not None and not within(e)
    return within


def distance_m(a: Sequence[float], b: Sequence[float]) -> float:
    """Great-circle distance in metres between two (lon, lat) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def inside(point: Sequence[float], polygon: Sequence[Sequence[Sequence[float]]]) -> bool:
    """Whether (lon, lat) is inside a GeoJSON polygon (outer ring minus holes; even-odd)."""
    outer, *holes = polygon
    return _in_ring(point, outer) and not any(_in_ring(point, hole) for hole in holes)


def _in_ring(point: Sequence[float], ring: Sequence[Sequence[float]]) -> bool:
    x, y = point[0], point[1]
    hit = False
    for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    if quoted:
        raise QueryError("q", f"{text!r} has an unclosed quote")
    if any(not part.strip() for part in parts):
        raise QueryError("q", f"{text!r} has an empty term")
    return parts


def _term(text: str) -> Match:
    found = _TERM.match(text.strip("() "))
    if (not found or (found.group(2) is None) != (found.group(3) == "")
            or found.group(3)[:1] in ("=", "<", ">", "!", "~")):
        raise QueryError("q", f"term {text!r} is not attr, or attr<op>value with op one of "
                              "==, !=, >, >=, <, <=, ~=")
    path, op, raw = found.group(1).split("."), found.group(2), found.group(3)
    if op is None:
        return lambda entity: _value(entity, path) is not None
    if op == "~=":
        try:
            pattern = re.compile(_literal(raw) if raw.startswith('"') else raw)
        except re.error as exc:
            raise QueryError("q", f"pattern {raw!r} is not a regular expression: {exc}") from None
        return lambda e: isinstance(_value(e, path), str) and bool(pattern.search(_value(e, path)))
    if ".." in raw and not raw.startswith('"'):
        low, high = (_literal(v) for v in raw.split("..", 1))

        def in_range(entity: Mapping[str, Any]) -> bool:
            value = _value(entity, path)
            return _compare(value, low, ">=") and _compare(value, high, "<=")
        return lambda e: in_range(e) == (op == "==")
    values = [_literal(v) for v in _split(raw, ",")] if op in ("==", "!=") else [_literal(raw)]
    if op == "!=":
        return lambda e: _value(e, path) is not None and not any(
            _compare(_value(e, path), v, "==") for v in values)
    return lambda e: any(_compare(_value(e, path), v, op) for v in values)


def _literal(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return float(raw)
    except ValueError:
        return raw  # a bare word: a string (a date, an id)


def _compare(left: Any, right: Any, op: str) -> bool:
    if isinstance(left, list):
        return any(_compare(item, right, op) for item in left)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
    if not numbers and not (isinstance(left, type(right)) or isinstance(right, type(left))):
        return False
    try:
        return bool(_OPERATORS[op](left, right))
    except TypeError:
        return False


def _value(entity: Mapping[str, Any], path: list[str]) -> Any:
    attribute = entity.get(path[0])
    value = attribute.get("value", attribute.get("object")) if isinstance(
        attribute, Mapping) and "type" in attribute else attribute
    for key in path[1:]:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _at(entity: Mapping[str, Any]) -> tuple[float, float] | None:
    location = entity.get("location")
    value = location.get("value") if isinstance(location, Mapping) else None
    if isinstance(value, Mapping) and value.get("type") == "Point":
        lon, lat = value["coordinates"][:2]
        return (float(lon), float(lat))
    return None


def _lon_lat(geometry: str, coords: Any) -> tuple[float, float]:
    if geometry != "Point" or not (isinstance(coords, list) and len(coords) == 2 and all(
            isinstance(c, (int, float)) for c in coords)):
        raise QueryError("coordinates", f"near and equals take geometry=Point with "
                                        f"coordinates [lon,lat], got {geometry} {coords!r}")
    return (float(coords[0]), float(coords[1]))


def _distance_bound(options: list[str]) -> tuple[Callable[[float, float], bool], float]:
    for option in options:
        name, _, number = option.partition("==")
        if name in ("maxDistance", "minDistance"):
            try:
                limit = float(number)
            except ValueError:
                limit = -1.0
            if limit < 0:
                raise QueryError("georel", f"{name} {number!r} must be metres (>= 0)")
            if name == "maxDistance":
                return (lambda d, m: d <= m), limit
            return (lambda d, m: d >= m), limit
    raise QueryError("georel", "near needs maxDistance==<metres> or minDistance==<metres>")


def _polygons(geometry: str, coords: Any) -> list[Any]:
    try:
        if geometry not in ("Polygon", "MultiPolygon"):
            raise ValueError
        polygons: list[Any] = [coords] if geometry == "Polygon" else list(coords)
        for polygon in polygons:
            for ring in polygon:
                if len(ring) < 4 or any(len(p) < 2 for p in ring):
                    raise ValueError
        return polygons
    except (KeyError, TypeError, ValueError):
        msg = (f"within, intersects and disjoint take geometry=Polygon or MultiPolygon with "
               f"GeoJSON coordinates (closed rings of [lon,lat]), got {geometry} {coords!r}")
        raise QueryError("coordinates", msg) from None
