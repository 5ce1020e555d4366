"""models.spatial: the forms of --near/--radius/--within/--bbox, distances, and the box that
encloses a circle (the index prefilter must never drop a point the circle holds)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from alerts.spatial import distance_m as alerts_distance_m
from models.spatial import (
    EARTH_RADIUS_M,
    BBox,
    InvalidSpatialFilter,
    Near,
    Within,
    distance_m,
    enclosing_bbox,
    parse_filter,
    parse_radius,
)

RING = ((11.55, 48.13), (11.58, 48.13), (11.58, 48.15), (11.55, 48.15), (11.55, 48.13))


@pytest.mark.parametrize(("text", "metres"), [
    ("500m", 500.0), ("2km", 2000.0), ("1.5km", 1500.0), ("300", 300.0), ("2KM", 2000.0),
    (" 750 m ", 750.0),
])
def test_a_radius_is_metres_or_kilometres(text: str, metres: float) -> None:
    assert parse_radius(text) == metres


@pytest.mark.parametrize("text", ["", "500 feet", "-5m", "0", "1e3", "km", "30000km"])
def test_a_bad_radius_is_refused_naming_the_option_value_and_forms(text: str) -> None:
    with pytest.raises(InvalidSpatialFilter) as caught:
        parse_radius(text)
    message = str(caught.value)
    assert message.startswith(f"--radius {text!r}")
    assert "500m, 2km" in message


def test_near_needs_a_radius_and_a_radius_needs_near() -> None:
    assert parse_filter(near="48.14,11.565", radius="500m") == Near(48.14, 11.565, 500.0)
    with pytest.raises(InvalidSpatialFilter, match=r"--near '48.14,11.565': needs --radius"):
        parse_filter(near="48.14,11.565")
    assert parse_filter(near="48.14,11.565", default_radius="250") == Near(48.14, 11.565, 250.0)
    with pytest.raises(InvalidSpatialFilter, match=r"^radius '2km': a radius needs near"):
        parse_filter(radius="2km", prefix="")


@pytest.mark.parametrize(("near", "why"), [
    ("48.14", "expected LAT,LON"), ("x,y", "expected LAT,LON"), ("91,0", "latitude 91"),
    ("0,181", "longitude 181"), ("nan,0", "expected LAT,LON"),
])
def test_a_bad_point_is_refused(near: str, why: str) -> None:
    with pytest.raises(InvalidSpatialFilter, match=why):
        parse_filter(near=near, radius="1km")


def test_only_one_filter_at_a_time() -> None:
    with pytest.raises(InvalidSpatialFilter, match="give one of near, within and bbox, not "
                       "near and bbox"):
        parse_filter(near="48.14,11.565", radius="1km", bbox="48,11,49,12", prefix="")


def test_within_names_a_district_and_lists_the_valid_ones() -> None:
    within = parse_filter(within="old-town", districts={"old-town": RING})
    assert within == Within("old-town", RING)
    assert within.contains(48.14, 11.565) and not within.contains(48.14, 11.59)
    assert within.contains(48.14, 11.58)  # on its border
    assert within.bbox() == BBox(48.13, 11.55, 48.15, 11.58)
    with pytest.raises(InvalidSpatialFilter, match="not a district: one of harbour, old-town"):
        parse_filter(within="atlantis", districts={"old-town": RING, "harbour": RING})


def test_a_bbox_is_south_west_north_east() -> None:
    box = parse_filter(bbox="48.13,11.55,48.15,11.61")
    assert box == BBox(48.13, 11.55, 48.15, 11.61)
    assert box.contains(48.14, 11.6) and not box.contains(48.16, 11.6)
    with pytest.raises(InvalidSpatialFilter, match="south 49 is north of north 48"):
        parse_filter(bbox="49,11,48,12")
    with pytest.raises(InvalidSpatialFilter, match="expected S,W,N,E"):
        parse_filter(bbox="48,11,49")
    across = parse_filter(bbox="-20,170,-10,-170")
    assert across.contains(-15, 179.5) and across.contains(-15, -175)
    assert not across.contains(-15, 0)


def test_distances_are_those_incidents_are_placed_by() -> None:
    a, b = (48.14, 11.565), (48.1445, 11.571)
    assert distance_m(a, b) == pytest.approx(alerts_distance_m(a, b), rel=1e-12)
    # one degree of latitude on the mean sphere
    assert distance_m((0, 0), (1, 0)) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)


def test_near_holds_its_edge() -> None:
    centre = (48.14, 11.565)
    north = (centre[0] + math.degrees(499.0 / EARTH_RADIUS_M), centre[1])
    beyond = (centre[0] + math.degrees(501.0 / EARTH_RADIUS_M), centre[1])
    near = Near(*centre, 500.0)
    assert near.contains(*north) and not near.contains(*beyond)


def _destination(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (lat, lon) along ``bearing`` (degrees), on the sphere."""
    d = metres / EARTH_RADIUS_M
    phi, lam, theta = math.radians(lat), math.radians(lon), math.radians(bearing)
    phi2 = math.asin(math.sin(phi) * math.cos(d) + math.cos(phi) * math.sin(d) * math.cos(theta))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(d) * math.cos(phi),
                            math.cos(d) - math.sin(phi) * math.sin(phi2))
    lon2 = (math.degrees(lam2) + 540.0) % 360.0 - 180.0
    return math.degrees(phi2), lon2


_LAT = st.floats(-89.9, 89.9)
_LON = st.floats(-180.0, 180.0)
_RADIUS_M = st.one_of(st.floats(0.5, 5_000.0), st.floats(5_000.0, 3_000_000.0))


@hsettings(max_examples=400, deadline=None)
@given(_LAT, _LON, _RADIUS_M, st.floats(0.0, 360.0), st.floats(0.0, 1.0))
def test_the_box_of_a_circle_holds_every_point_of_the_circle(
    lat: float, lon: float, radius: float, bearing: float, share: float,
) -> None:
    point = _destination(lat, lon, bearing, radius * share)
    box = enclosing_bbox(lat, lon, radius)
    if distance_m((lat, lon), point) <= radius:
        assert box.contains(*point), (box, point)
    edge = _destination(lat, lon, bearing, radius)
    if distance_m((lat, lon), edge) <= radius:
        assert box.contains(*edge), (box, edge)


@hsettings(max_examples=200, deadline=None)
@given(st.floats(-80.0, 80.0), _LON, st.floats(1.0, 50_000.0))
def test_the_box_of_a_small_circle_is_tight(lat: float, lon: float, radius: float) -> None:
    box = enclosing_bbox(lat, lon, radius)
    # the box's north and south edges are the circle's own (no wasted prefilter)
    assert box.north - lat == pytest.approx(math.degrees(radius / EARTH_RADIUS_M), abs=1e-6)
