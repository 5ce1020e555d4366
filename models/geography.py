"""The city's districts as real geography: parse, check and locate points, with no I/O.

    geography = parse_geography(collection, id_property="id", name_property="name")
    for problem in geography.problems:          # invalid rings, overlaps, gaps, duplicate ids
        print(problem)                          # feature 3 (id 'marina'): ...
    locator = Locator(geography.districts)
    locator.locate(37.8026, -122.4058)          # 'north-beach', or None outside every district
    locator.locate_many(lats, lons)             # a list, vectorised through an STRtree

``collection`` is a GeoJSON FeatureCollection already loaded as a mapping (WGS84, [lon, lat]);
each feature is a Polygon or MultiPolygon (holes allowed) with its district id and name in the
named properties. Ids are strings (a whole-number id becomes its decimal string).

Rules a user relies on:

- A point on the border shared by several districts belongs to the one with the **smallest id**
  (string order), whatever the order of the features in the file, so the answer never changes
  when a file is re-sorted. A point on a district's outer border belongs to it.
- A point in a district's hole belongs to nobody, unless another district fills the hole.
- A gap is uncovered area enclosed by the union of the districts and bordered by two or more of
  them (a sliver left between neighbours). The city's outer boundary is not a gap, and neither is
  a hole of one district that nothing fills (a lake): only its own district borders it.
- Overlaps and gaps count when their area exceeds ``tolerance_m2`` square metres (areas are
  measured on a local equal-area approximation, good to a fraction of a percent at city scale).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import explain_validity

__all__ = [
    "District",
    "GeoProblem",
    "Geography",
    "Locator",
    "area_m2",
    "check_coverage",
    "parse_geography",
]

_METRES_PER_DEGREE = 111_320.0
_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class District:
    """One district: its id, name, polygonal geometry (lon, lat) and index in the file."""

    id: str
    name: str
    geometry: Polygon | MultiPolygon
    index: int = 0


@dataclass(frozen=True)
class GeoProblem:
    """Something wrong with a boundaries file, naming the feature (index in the file and id)."""

    index: int | None
    feature_id: str | None
    reason: str

    def __str__(self) -> str:
        if self.index is None:
            return self.reason
        named = f" (id {self.feature_id!r})" if self.feature_id is not None else ""
        return f"feature {self.index}{named}: {self.reason}"


@dataclass(frozen=True)
class Geography:
    """The districts read from a FeatureCollection and every problem found in it."""

    districts: tuple[District, ...]
    problems: tuple[GeoProblem, ...] = field(default=())


def parse_geography(
    collection: Mapping[str, Any],
    *,
    id_property: str,
    name_property: str | None = None,
    tolerance_m2: float = 1.0,
) -> Geography:
    """Read districts from a FeatureCollection mapping and check them (see the module rules).

    An invalid geometry is reported and kept repaired (``shapely.make_valid``), so the
    overlap and gap checks still see it. A feature that cannot become a district (no geometry,
    not polygonal, no id) is left out and reported; with ``name_property`` None a district is
    named by its id.
    """
    if collection.get("type") != "FeatureCollection" or not isinstance(
        collection.get("features"), list
    ):
        reason = "not a GeoJSON FeatureCollection (needs \"type\": \"FeatureCollection\" and "
        reason += "a \"features\" list)"
        return Geography((), (GeoProblem(None, None, reason),))
    districts: list[District] = []
    problems: list[GeoProblem] = []
    for index, feature in enumerate(collection["features"]):
        district = _parse_feature(index, feature, id_property, name_property, problems)
        if district is not None:
            districts.append(district)
    if not districts and not problems:
        problems.append(GeoProblem(None, None, "the FeatureCollection has no features"))
    problems += _duplicate_ids(districts)
    problems += check_coverage(districts, tolerance_m2=tolerance_m2)
    return Geography(tuple(districts), tuple(problems))


def _parse_feature(
    index: int,
    feature: Any,
    id_property: str,
    name_property: str | None,
    problems: list[GeoProblem],
) -> District | None:
    if not isinstance(feature, Mapping):
        problems.append(GeoProblem(index, None, "is not a GeoJSON Feature object"))
        return None
    properties = feature.get("properties") or {}
    raw_id = properties.get(id_property) if isinstance(properties, Mapping) else None
    feature_id = _as_id(raw_id)
    if feature_id is None:
        found = sorted(properties) if isinstance(properties, Mapping) else []
        if raw_id is None:
            reason = f"property {id_property!r} (the district id) is missing; it has {found}"
        else:
            reason = f"property {id_property!r} is {raw_id!r}, not a district id"
        problems.append(GeoProblem(index, None, reason))
        return None
    geometry = _parse_geometry(index, feature_id, feature.get("geometry"), problems)
    if geometry is None:
        return None
    name = properties.get(name_property) if name_property else None
    if name_property and not isinstance(name, str | int):
        reason = f"property {name_property!r} (the district name) is missing or not a string"
        problems.append(GeoProblem(index, feature_id, reason))
    return District(feature_id, str(name) if name is not None else feature_id, geometry, index)


def _as_id(raw: Any) -> str | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, str) and raw.strip():
        return raw
    return None


def _parse_geometry(
    index: int, feature_id: str, raw: Any, problems: list[GeoProblem]
) -> Polygon | MultiPolygon | None:
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind not in _POLYGONAL:
        reason = f"geometry is {kind or raw!r}, not a Polygon or MultiPolygon"
        problems.append(GeoProblem(index, feature_id, reason))
        return None
    try:
        parsed = shape(raw)
    except (GEOSException, ValueError, TypeError, IndexError, AttributeError) as exc:
        problems.append(GeoProblem(index, feature_id, f"{kind} coordinates are malformed: {exc}"))
        return None
    assert isinstance(parsed, Polygon | MultiPolygon)  # the type was checked above
    geometry: Polygon | MultiPolygon = parsed
    if geometry.is_empty:
        problems.append(GeoProblem(index, feature_id, f"{kind} is empty"))
        return None
    xmin, ymin, xmax, ymax = geometry.bounds
    if not (-180 <= xmin and xmax <= 180 and -90 <= ymin and ymax <= 90):
        box = [round(value, 7) for value in (xmin, ymin, xmax, ymax)]
        reason = f"bounding box {box} is not in WGS84 [lon, lat] degrees"
        problems.append(GeoProblem(index, feature_id, reason))
        return None
    if not geometry.is_valid:
        reason = f"invalid {kind}: {explain_validity(geometry)}"
        problems.append(GeoProblem(index, feature_id, reason))
        geometry = _repaired(geometry)
    return geometry


def _repaired(geometry: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    """The polygonal part of ``shapely.make_valid(geometry)``: what the checks and lookups use."""
    fixed = shapely.make_valid(geometry)
    if isinstance(fixed, Polygon | MultiPolygon):
        return fixed
    polygons = [
        part for part in getattr(fixed, "geoms", [])
        if isinstance(part, Polygon | MultiPolygon)
    ]
    merged = shapely.union_all(polygons)
    return merged if isinstance(merged, Polygon | MultiPolygon) else MultiPolygon()


def _duplicate_ids(districts: Sequence[District]) -> list[GeoProblem]:
    first: dict[str, int] = {}
    problems = []
    for district in districts:
        if district.id in first:
            reason = f"id {district.id!r} is also the id of feature {first[district.id]}"
            problems.append(GeoProblem(district.index, district.id, reason))
        else:
            first[district.id] = district.index
    return problems


def area_m2(geometry: shapely.Geometry, latitude: float) -> float:
    """The area of a lon/lat ``geometry`` in square metres, scaled at ``latitude`` degrees."""
    scale = _METRES_PER_DEGREE**2 * math.cos(math.radians(latitude))
    return float(shapely.area(geometry)) * scale


def check_coverage(
    districts: Sequence[District], *, tolerance_m2: float = 1.0
) -> list[GeoProblem]:
    """Overlaps between districts and gaps between neighbours larger than ``tolerance_m2``.

    The districts' geometries must be valid (:func:`parse_geography` repairs them).
    """
    if not districts:
        return []
    geometries = [d.geometry for d in districts]
    latitude = float(np.mean([g.centroid.y for g in geometries]))
    tree = shapely.STRtree(geometries)
    problems: list[GeoProblem] = []
    left, right = tree.query(geometries, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        overlap = area_m2(shapely.intersection(geometries[i], geometries[j]), latitude)
        if overlap > tolerance_m2:
            a, b = districts[i], districts[j]
            reason = f"overlaps feature {b.index} (id {b.id!r}) by {overlap:.1f} m²"
            problems.append(GeoProblem(a.index, a.id, reason))
    problems += _gaps(districts, tree, latitude, tolerance_m2)
    return problems


def _gaps(
    districts: Sequence[District], tree: shapely.STRtree, latitude: float, tolerance_m2: float
) -> list[GeoProblem]:
    union = shapely.union_all([d.geometry for d in districts])
    parts = union.geoms if isinstance(union, MultiPolygon) else [union]
    problems = []
    for part in parts:
        if not isinstance(part, Polygon):  # a union of polygons holds polygons only
            continue
        for ring in part.interiors:
            hole = Polygon(ring)
            area = area_m2(hole, latitude)
            if area <= tolerance_m2:
                continue
            bordering = [
                districts[i]
                for i in sorted(tree.query(hole, predicate="intersects").tolist())
                if shapely.intersection(districts[i].geometry.boundary, ring).length > 0
            ]
            if len(bordering) < 2:
                continue  # a hole of one district that nothing fills: not a gap
            first, others = bordering[0], bordering[1:]
            where = hole.representative_point()
            named = ", ".join(f"feature {d.index} (id {d.id!r})" for d in others)
            reason = (
                f"a gap of {area:.1f} m² near lon {where.x:.6f}, lat {where.y:.6f} between it "
                f"and {named} belongs to no district"
            )
            problems.append(GeoProblem(first.index, first.id, reason))
    return problems


class Locator:
    """Which district a point is in, through an STRtree of the district geometries.

    A point on a border shared by several districts goes to the smallest id (string order); a
    point outside every district (or in a hole nothing fills) gets None.
    """

    def __init__(self, districts: Sequence[District]) -> None:
        ordered = sorted(districts, key=lambda d: d.id)
        self._ids: list[str] = [d.id for d in ordered]
        self._tree = shapely.STRtree([d.geometry for d in ordered])

    @property
    def ids(self) -> list[str]:
        """The district ids, in tie-break (string) order."""
        return list(self._ids)

    def locate(self, lat: float, lon: float) -> str | None:
        """The id of the district holding (``lat``, ``lon``), or None."""
        return self.locate_many([lat], [lon])[0]

    def locate_many(self, lats: Sequence[float], lons: Sequence[float]) -> list[str | None]:
        """The district id (or None) of each (lat, lon) pair, in one vectorised query."""
        points = shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        found: list[str | None] = [None] * len(lats)
        point_index, geometry_index = self._tree.query(points, predicate="intersects")
        # several hits for a point on a shared border: the smallest geometry index (= id) wins
        order = np.lexsort((geometry_index, point_index))
        point_index, geometry_index = point_index[order], geometry_index[order]
        first = np.unique(point_index, return_index=True)[1]
        for point, geometry in zip(
            point_index[first].tolist(), geometry_index[first].tolist(), strict=True
        ):
            found[point] = self._ids[geometry]
        return found
