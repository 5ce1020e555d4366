"""The district boundaries at start: ``city.boundaries`` read, checked, made districts.

    city:
      name: San Francisco
      boundaries: {file: geo/san-francisco.geojson, id_property: id, name_property: name}

``file`` is a GeoJSON FeatureCollection (relative to config.yaml's directory); every problem
:func:`models.geography.parse_geography` finds (invalid ring, overlap, gap, duplicate or missing
id) stops the start with a ConfigError naming the feature. Without ``city.boundaries`` the
hand-drawn ``districts:`` list of config.yaml is the city's geography.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import ConfigError

if TYPE_CHECKING:  # shapely (and numpy) load only when a city has geography to read
    from models.geography import District, Geography

__all__ = ["BoundariesSettings", "apply_boundaries", "geography_of", "read_boundaries"]

KEY = "city.boundaries"
_DISTRICT_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")  # settings.config.District.id's pattern


class BoundariesSettings(BaseModel):
    """Where the district boundaries are and which feature properties hold id and name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    id_property: str = "id"
    name_property: str | None = "name"
    tolerance_m2: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    """Overlaps and gaps up to this area (square metres) are not reported."""


def read_boundaries(
    path: Path, *, id_property: str, name_property: str | None, tolerance_m2: float = 1.0
) -> Geography:
    """Read and check the boundaries file at ``path``; ConfigError if it is not GeoJSON."""
    from models.geography import parse_geography

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the boundaries: {exc.strerror}") from exc
    try:
        collection = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(str(path), "", f"not valid JSON: {exc}") from exc
    if not isinstance(collection, dict):
        raise ConfigError(str(path), "", "not a GeoJSON FeatureCollection object")
    return parse_geography(
        collection, id_property=id_property, name_property=name_property,
        tolerance_m2=tolerance_m2,
    )


def apply_boundaries(
    data: dict[str, Any], *, source: str, base_dir: Path
) -> tuple[dict[str, Any], Geography]:
    """Read ``city.boundaries`` of the raw config ``data``: (data with districts, geography).

    The districts derived from the file (centroid: a point inside; polygon: the outer ring of
    its largest part, for the map) take the place of a ``districts:`` list, which must then be
    absent.
    """
    city = data["city"]
    try:
        boundaries = BoundariesSettings.model_validate(city["boundaries"])
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join([KEY, *(str(part) for part in error["loc"])])
        reason = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise ConfigError(source, key, reason) from exc
    path = Path(boundaries.file)
    path = path if path.is_absolute() else base_dir / path
    try:
        geography = read_boundaries(
            path, id_property=boundaries.id_property, name_property=boundaries.name_property,
            tolerance_m2=boundaries.tolerance_m2,
        )
    except ConfigError as exc:
        raise ConfigError(source, f"{KEY}.file", f"{path}: {exc.reason}") from exc
    if geography.problems:
        listed = "; ".join(str(problem) for problem in geography.problems)
        reason = f"{path}: {len(geography.problems)} problem(s): {listed}"
        raise ConfigError(source, f"{KEY}.file", reason)
    for district in geography.districts:
        if not _DISTRICT_ID.fullmatch(district.id):
            reason = (
                f"{path}: feature {district.index} has id {district.id!r}, which cannot name a "
                "district in topics and keys (lower-case letters, digits, '-' and '_'); "
                "name another property or add one"
            )
            raise ConfigError(source, f"{KEY}.id_property", reason)
    if "districts" in data:
        reason = f"give either districts or {KEY}, not both (the boundaries name the districts)"
        raise ConfigError(source, "districts", reason)
    resolved = {**city, "boundaries": {**city["boundaries"], "file": str(path.resolve())}}
    derived = [_district_entry(d) for d in geography.districts]
    return {**data, "city": resolved, "districts": derived}, geography


def _district_entry(district: District) -> dict[str, Any]:
    from shapely.geometry import MultiPolygon

    geometry = district.geometry
    largest = max(geometry.geoms, key=lambda p: p.area) if isinstance(
        geometry, MultiPolygon) else geometry
    inside = geometry.representative_point()
    return {
        "id": district.id,
        "name": district.name,
        "centroid": [round(inside.x, 6), round(inside.y, 6)],
        "polygon": [[x, y] for x, y in largest.exterior.coords],
    }


def geography_of(districts: Iterable[Any]) -> Geography:
    """Hand-drawn districts (``id``, ``name``, ``polygon`` ring) as a geography, unchecked."""
    from shapely.geometry import Polygon

    from models.geography import District, Geography

    return Geography(tuple(
        District(d.id, d.name, Polygon(d.polygon), index) for index, d in enumerate(districts)
    ))
