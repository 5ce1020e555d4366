"""What the dashboard's map draws: the districts as GeoJSON and the devices with their places.

    districts_geojson(settings)    # {"type": "FeatureCollection", "features": [...]}

``GET /api/geo/districts`` answers :func:`districts_geojson`: one Feature per district, in
config order, with its whole geometry (a MultiPolygon with its parts and holes when the city's
districts come from ``city.boundaries``; the hand-drawn ring otherwise) and the properties
``id``, ``name`` and ``centroid`` ([lon, lat], where a device without a position is drawn).
Coordinates keep 6 decimals (about 10 cm). ``GET /api/devices`` answers
``{"devices": [{"id", "district", "kind", "lat"?, "lon"?, ...}]}`` from the ``devices`` the
server was given (a registry), for operators and dispatchers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from settings.config import Settings

__all__ = ["DeviceList", "districts_geojson"]

DeviceList = Callable[[], list[dict[str, Any]]]
"""() -> the devices the map places: {"id", "district", "kind", "lat"?, "lon"?} each."""


def districts_geojson(settings: Settings) -> dict[str, Any]:
    """The city's districts as a GeoJSON FeatureCollection (see the module doc)."""
    from shapely.geometry import mapping  # shapely loads only when the map asks

    centroids = {d.id: [d.centroid[0], d.centroid[1]] for d in settings.districts}
    features = []
    for district in settings.geography.districts:
        geometry = mapping(district.geometry)
        features.append({
            "type": "Feature", "id": district.id,
            "properties": {"id": district.id, "name": district.name,
                           "centroid": centroids.get(district.id)},
            "geometry": {"type": geometry["type"],
                         "coordinates": _rounded(geometry["coordinates"])},
        })
    return {"type": "FeatureCollection", "features": features}


def _rounded(coordinates: Any) -> Any:
    if coordinates and isinstance(coordinates[0], float | int):
        return [round(float(c), 6) for c in coordinates]
    return [_rounded(part) for part in coordinates]
