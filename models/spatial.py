"""Spatial questions about the city's history, as values: near a point, within a district, in a
box. Parsing, great-circle distance and the box that encloses a circle; no I/O.

    near = parse_filter(near="48.14,11.565", radius="500m")       # Near(48.14, 11.565, 500.0)
    near.contains(48.141, 11.566)                                   # True: 133 m away
    near.bbox()                                                     # BBox(south=..., ...)
    parse_filter(bbox="48.13,11.55,48.15,11.61")                    # BBox(48.13, 11.55, ...)
    parse_filter(within="old-town", districts={"old-town": ring})   # Within("old-town", ring)
    parse_filter()                                                  # None: no spatial filter

Forms (the CLI's ``--near LAT,LON --radius 500m``, ``--within DISTRICT``, ``--bbox S,W,N,E``;
the HTTP API's ``near=``, ``radius=``, ``within=``, ``bbox=``):

- a point is ``LAT,LON`` in WGS 84 degrees (latitude first, as ``cityheart locate`` takes it);
- a radius is metres: ``500m``, ``2km``, ``1.5km`` or a bare number (``300``: metres), more
  than 0 and at most half the earth's circumference;
- a box is ``S,W,N,E`` (south <= north; west > east is a box across the antimeridian);
- a district is one of the city's ids, and a point is within it when its polygon covers the
  point (a point on a border shared by two districts is within both).

Distances are on a sphere of the earth's mean radius (haversine), as
:func:`alerts.spatial.distance_m` measures them and as PostGIS does with ``use_spheroid =>
false``, so every backend gives the same answers. A filter is given once: two of near, within
and bbox together, or a radius without near, are refused. Errors are
:class:`InvalidSpatialFilter`, a ValueError naming the option, the value and the valid forms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon

__all__ = [
    "EARTH_RADIUS_M",
    "BBox",
    "InvalidSpatialFilter",
    "Near",
    "SpatialFilter",
    "Within",
    "distance_m",
    "enclosing_bbox",
    "parse_bbox",
    "parse_filter",
    "parse_point",
    "parse_radius",
]

EARTH_RADIUS_M = 6_371_008.8
"""The earth's mean radius (IUGG), for great-circle distances."""

MAX_RADIUS_M = math.pi * EARTH_RADIUS_M
"""Half the circumference: a circle this large covers the whole earth."""

RADIUS_FORMS = "500m, 2km, 1.5km or 300 (metres)"
POINT_FORM = "LAT,LON in degrees, e.g. 48.14,11.565"
BBOX_FORM = "S,W,N,E in degrees, e.g. 48.13,11.55,48.15,11.61"

_RADIUS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(m|km)?\s*$", re.IGNORECASE)
_MARGIN = 1e-9  # relative widening of a radius's box, against rounding at its edge


class InvalidSpatialFilter(ValueError):
    """Raised when a spatial option cannot be understood: names the option, its value and why
    (with the valid forms)."""

    def __init__(self, option: str, value: object, reason: str) -> None:
        super().__init__(option, value, reason)
        self.option = option
        self.value = value
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.option} {self.value!r}: {self.reason}"


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle distance in metres between two (lat, lon) points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class BBox:
    """A box of latitudes and longitudes (degrees); ``west > east`` crosses the antimeridian."""

    south: float
    west: float
    north: float
    east: float

    @property
    def crosses_antimeridian(self) -> bool:
        """Whether the box runs east from ``west`` past 180 degrees to ``east``."""
        return self.west > self.east

    def contains(self, lat: float, lon: float) -> bool:
        """Whether (lat, lon) lies in the box, edges included."""
        if not self.south <= lat <= self.north:
            return False
        if self.crosses_antimeridian:
            return lon >= self.west or lon <= self.east
        return self.west <= lon <= self.east

    def bbox(self) -> BBox:
        """The box itself (every filter has a box, for an index's prefilter)."""
        return self


@dataclass(frozen=True, slots=True)
class Near:
    """Within ``radius_m`` metres (great circle) of (``lat``, ``lon``), the edge included."""

    lat: float
    lon: float
    radius_m: float

    def contains(self, lat: float, lon: float) -> bool:
        """Whether (lat, lon) is at most ``radius_m`` from the centre."""
        return distance_m((self.lat, self.lon), (lat, lon)) <= self.radius_m

    def bbox(self) -> BBox:
        """A box holding the whole circle (see :func:`enclosing_bbox`)."""
        return enclosing_bbox(self.lat, self.lon, self.radius_m)


@dataclass(frozen=True, slots=True)
class Within:
    """Inside (or on the border of) ``district``'s polygon ``ring`` of (lon, lat) points."""

    district: str
    ring: tuple[tuple[float, float], ...]

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the polygon covers (lat, lon)."""
        return bool(Polygon(self.ring).covers(ShapelyPoint(lon, lat)))

    def bbox(self) -> BBox:
        """The polygon's bounding box."""
        lons = [p[0] for p in self.ring]
        lats = [p[1] for p in self.ring]
        return BBox(min(lats), min(lons), max(lats), max(lons))

    def wkt(self) -> str:
        """The polygon as WKT (lon lat), for PostGIS."""
        return "POLYGON((" + ", ".join(f"{lon!r} {lat!r}" for lon, lat in self.ring) + "))"

    def pg_polygon(self) -> str:
        """The polygon as PostgreSQL's ``polygon`` type's text, ``((x,y),...)`` (x: lon)."""
        return "(" + ",".join(f"({lon!r},{lat!r})" for lon, lat in self.ring) + ")"


SpatialFilter = Near | Within | BBox


def enclosing_bbox(lat: float, lon: float, radius_m: float) -> BBox:
    """The smallest box (a hair wider) holding every point within ``radius_m`` of (lat, lon):
    all longitudes when the circle reaches a pole, ``west > east`` when it crosses the
    antimeridian."""
    angle = min(math.pi, radius_m * (1 + _MARGIN) / EARTH_RADIUS_M)
    spread = math.degrees(angle) + _MARGIN
    south, north = max(-90.0, lat - spread), min(90.0, lat + spread)
    if south <= -90.0 or north >= 90.0 or angle >= math.pi / 2:
        return BBox(south, -180.0, north, 180.0)
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return BBox(south, -180.0, north, 180.0)
    dlon = math.degrees(math.asin(ratio)) * (1 + _MARGIN) + _MARGIN
    west, east = lon - dlon, lon + dlon
    if west < -180.0:
        west += 360.0
    if east > 180.0:
        east -= 360.0
    return BBox(south, west, north, east)


def parse_point(text: str, option: str = "--near") -> tuple[float, float]:
    """``LAT,LON`` as (lat, lon) degrees."""
    numbers = _numbers(text, option, 2, POINT_FORM)
    lat, lon = numbers
    _check_lat(lat, option, text)
    _check_lon(lon, option, text)
    return lat, lon


def parse_radius(text: str, option: str = "--radius") -> float:
    """``500m``, ``2km``, ``1.5km`` or ``300`` (metres) as metres."""
    match = _RADIUS.match(str(text))
    if match is None:
        raise InvalidSpatialFilter(option, text, f"not a distance: use {RADIUS_FORMS}")
    value = float(match.group(1)) * (1000.0 if (match.group(2) or "m").lower() == "km" else 1.0)
    if not 0 < value <= MAX_RADIUS_M:
        reason = f"must be more than 0 and at most {MAX_RADIUS_M / 1000:.0f}km ({RADIUS_FORMS})"
        raise InvalidSpatialFilter(option, text, reason)
    return value


def parse_bbox(text: str, option: str = "--bbox") -> BBox:
    """``S,W,N,E`` as a BBox."""
    south, west, north, east = _numbers(text, option, 4, BBOX_FORM)
    for lat in (south, north):
        _check_lat(lat, option, text)
    for lon in (west, east):
        _check_lon(lon, option, text)
    if south > north:
        raise InvalidSpatialFilter(option, text, f"south {south:g} is north of north {north:g} "
                                   f"({BBOX_FORM})")
    return BBox(south, west, north, east)


def parse_filter(
    *, near: str | None = None, radius: str | None = None, within: str | None = None,
    bbox: str | None = None, districts: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    default_radius: str | None = None, prefix: str = "--",
) -> SpatialFilter | None:
    """The one spatial filter the options give (None: none). ``districts`` maps each district
    id to its (lon, lat) ring; ``prefix`` is how the options are spelt (``--`` on the command
    line, ``""`` in a query string)."""
    values = {"near": near, "within": within, "bbox": bbox}
    given = [name for name, value in values.items() if value]
    if len(given) > 1:
        options = " and ".join(f"{prefix}{name}" for name in given)
        reason = f"give one of near, within and bbox, not {options}"
        raise InvalidSpatialFilter(prefix + given[1], values[given[1]], reason)
    if radius and not near:
        reason = f"a radius needs {prefix}near LAT,LON"
        raise InvalidSpatialFilter(prefix + "radius", radius, reason)
    if near:
        lat, lon = parse_point(near, prefix + "near")
        chosen = radius or default_radius
        if not chosen:
            reason = f"needs {prefix}radius ({RADIUS_FORMS})"
            raise InvalidSpatialFilter(prefix + "near", near, reason)
        return Near(lat, lon, parse_radius(chosen, prefix + "radius"))
    if within:
        known = districts or {}
        if within not in known:
            reason = f"not a district: one of {', '.join(sorted(known)) or 'none configured'}"
            raise InvalidSpatialFilter(prefix + "within", within, reason)
        return Within(within, tuple((float(x), float(y)) for x, y in known[within]))
    if bbox:
        return parse_bbox(bbox, f"{prefix}bbox")
    return None


def _numbers(text: str, option: str, count: int, form: str) -> list[float]:
    parts = str(text).split(",")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        raise InvalidSpatialFilter(option, text, f"expected {form}")
    return numbers


def _check_lat(lat: float, option: str, text: str) -> None:
    if not -90.0 <= lat <= 90.0:
        raise InvalidSpatialFilter(option, text, f"latitude {lat:g} is not in -90..90")


def _check_lon(lon: float, option: str, text: str) -> None:
    if not -180.0 <= lon <= 180.0:
        raise InvalidSpatialFilter(option, text, f"longitude {lon:g} is not in -180..180")
