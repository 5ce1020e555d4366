"""Where alerts and incidents are: distances on the earth, an incident's circle, spatial joins.

An incident's location is a circle (centre and radius in metres) around the positions of the
alerts that made it, grown one alert at a time so that it always holds every one of them
(:func:`grow`); the same events give the same circle, so a replay places it the same way::

    circle = grow(None, (37.76, -122.42))                 # (lat, lon, radius_m): radius 0
    circle = grow(circle, (37.762, -122.421))             # holds both points
    distance_m((37.76, -122.42), (37.762, -122.421))      # great-circle metres
    rule = spatial_match(rules, kind="traffic_speed", point=(37.761, -122.42), ts=ts,
                         incident=incident)               # the SpatialRule that joins, or None

A located alert of a kind a :class:`~settings.incidents.SpatialRule` lists joins an active
incident that has another kind of that rule, when the alert lies within ``within_m`` of the
incident's circle (its distance to the centre minus the radius) and its time within
``within_s`` of the incident's alerts. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from settings.incidents import SpatialRule

if TYPE_CHECKING:  # alerts.lifecycle places incidents with grow()
    from alerts.lifecycle import Incident

__all__ = ["EARTH_RADIUS_M", "Circle", "Point", "distance_m", "grow", "spatial_match"]

EARTH_RADIUS_M = 6_371_008.8
"""The earth's mean radius (IUGG), for great-circle distances."""

Point = tuple[float, float]
"""(lat, lon) in degrees, WGS84."""

Circle = tuple[float, float, float]
"""(lat, lon, radius in metres)."""


def distance_m(a: Point, b: Point) -> float:
    """The great-circle distance in metres between two (lat, lon) points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def grow(circle: Circle | None, point: Point) -> Circle:
    """The circle that holds ``circle`` and ``point``: unchanged if it holds the point already,
    else the smallest circle holding both the old circle and the point."""
    if circle is None:
        return (point[0], point[1], 0.0)
    lat, lon, radius = circle
    away = distance_m((lat, lon), point)
    if away <= radius:
        return circle
    new_radius = (radius + away) / 2
    share = (new_radius - radius) / away  # how far the centre moves towards the point
    return (lat + (point[0] - lat) * share, lon + (point[1] - lon) * share, new_radius)


def spatial_match(
    rules: Sequence[SpatialRule], *, kind: str, point: Point | None, ts: float,
    incident: Incident,
) -> SpatialRule | None:
    """The first of ``rules`` under which a located alert of ``kind`` at ``ts`` joins
    ``incident`` (active, located, with another kind of the rule, near in space and time)."""
    if point is None or not incident.active or incident.lat is None or incident.lon is None:
        return None
    for rule in rules:
        if kind not in rule.kinds or not any(k in rule.kinds and k != kind
                                             for k in incident.kinds):
            continue
        if not incident.first_alert_at - rule.within_s <= ts <= (
                incident.last_alert_at + rule.within_s):
            continue
        gap = distance_m((incident.lat, incident.lon), point) - incident.radius_m
        if gap <= rule.within_m:
            return rule
    return None
