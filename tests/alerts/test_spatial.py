"""Incidents with a place: located alerts of different kinds near each other are one incident."""

from __future__ import annotations

import copy
import math
import pickle

import pytest

from alerts.incidents import GroupingState, IncidentGrouper, InvalidAlert
from alerts.lifecycle import Incident, replay
from alerts.rules import Alert
from alerts.spatial import distance_m, grow
from settings.incidents import IncidentSettings, incident_problems

T0 = 1_795_669_200.0   # 2026-11-26T05:00:00Z
MISSION = (37.7599, -122.4148)   # (lat, lon)
METRES_PER_DEGREE_LAT = 111_195.0
SETTINGS = IncidentSettings.model_validate({
    "departments": [
        {"id": "water", "name": "Water", "sla_ack_s": 300, "sla_resolve_s": 7200},
        {"id": "traffic", "name": "Traffic", "sla_ack_s": 300, "sla_resolve_s": 7200},
        {"id": "operations", "name": "Operations", "sla_ack_s": 600, "sla_resolve_s": 14400},
    ],
    "routing": {"default": ["operations"]},
    "spatial_rules": [{"name": "burst-main", "title": "Burst main",
                       "kinds": ["water_pressure", "flooded_road", "traffic_slowdown"],
                       "within_m": 500, "within_s": 600, "departments": ["water", "traffic"]}],
})


def north(point: tuple[float, float], metres: float) -> tuple[float, float]:
    """The point ``metres`` due north of ``point``."""
    return point[0] + metres / METRES_PER_DEGREE_LAT, point[1]


def located(kind: str, district: str, ts: float, point: tuple[float, float] | None) -> dict:
    """An ``alerts`` wire record of the flow's Alert type, at ``point`` (lat, lon)."""
    lat, lon = point if point is not None else (None, None)
    return Alert.new(
        rule=f"{kind}.threshold", district=district, kind=kind, severity="warning", value=1.0,
        threshold=1.0, direction="above", stat="mean", unit="", window_start=ts - 10,
        window_end=ts, ts=ts, message=f"{kind} in {district}", lat=lat, lon=lon,
    ).record(emitted_at=ts)


def test_distances_are_great_circle_metres() -> None:
    assert distance_m(MISSION, MISSION) == 0.0
    assert distance_m(MISSION, north(MISSION, 500)) == pytest.approx(500, abs=0.5)
    east = (MISSION[0], MISSION[1] + 0.01)   # 0.01 degree of longitude at 37.76 N
    assert distance_m(MISSION, east) == pytest.approx(
        0.01 * METRES_PER_DEGREE_LAT * math.cos(math.radians(MISSION[0])), rel=1e-3)


def test_a_grown_circle_holds_every_point_it_was_given() -> None:
    points = [MISSION, north(MISSION, 300), (MISSION[0], MISSION[1] + 0.004),
              north(MISSION, -120), north(MISSION, 150)]
    circle = None
    for point in points:
        circle = grow(circle, point)
    assert circle is not None
    lat, lon, radius = circle
    for point in points:
        assert distance_m((lat, lon), point) <= radius + 0.01
    assert radius < 400   # around the points, not around their bounding box's far corner


def test_different_kinds_close_in_space_and_time_are_one_incident_routed_to_both() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    pressure = grouper.add(state, located("water_pressure", "mission", T0, MISSION))
    flooded = grouper.add(state, located("flooded_road", "mission", T0 + 120,
                                         north(MISSION, 300)))
    # across the border, still within 500 m of the incident's circle
    slow = grouper.add(state, located("traffic_slowdown", "castro", T0 + 300,
                                      north(MISSION, 700)))
    assert [pressure.status, flooded.status, slow.status] == ["opened", "joined", "joined"]
    incident = slow.incident
    assert incident is not None and len(state.incidents) == 1
    assert incident.kinds == ("water_pressure", "flooded_road", "traffic_slowdown")
    assert incident.districts == ("mission", "castro")
    assert set(incident.departments) >= {"water", "traffic"}
    assert incident.title == "Burst main in mission"
    assert incident.radius_m == pytest.approx(350, abs=1)
    assert distance_m((incident.lat, incident.lon), north(MISSION, 350)) < 1
    record = incident.to_record()
    assert record["districts"] == ["mission", "castro"] and record["radius_m"] > 0
    assert Incident.from_record(record) == incident


def test_distance_at_the_border_of_the_rule() -> None:
    grouper = IncidentGrouper(SETTINGS)
    inside = grouper.new_state()
    grouper.add(inside, located("water_pressure", "mission", T0, MISSION))
    near = grouper.add(inside, located("flooded_road", "castro", T0 + 60,
                                       north(MISSION, 499)))
    assert near.status == "joined"
    outside = grouper.new_state()
    grouper.add(outside, located("water_pressure", "mission", T0, MISSION))
    far = grouper.add(outside, located("flooded_road", "castro", T0 + 60,
                                       north(MISSION, 501)))
    assert far.status == "opened" and len(outside.incidents) == 2


def test_time_at_the_edge_of_the_rule() -> None:
    grouper = IncidentGrouper(SETTINGS)
    for after, status in [(600, "joined"), (601, "opened")]:
        state = grouper.new_state()
        grouper.add(state, located("water_pressure", "mission", T0, MISSION))
        late = grouper.add(state, located("flooded_road", "mission", T0 + after,
                                          north(MISSION, 50)))
        assert late.status == status, after
        early = grouper.new_state()
        grouper.add(early, located("water_pressure", "mission", T0, MISSION))
        before = grouper.add(early, located("flooded_road", "mission", T0 - after,
                                            north(MISSION, 50)))
        assert before.status == status, -after


def test_kinds_outside_the_rule_same_kind_and_unlocated_alerts_keep_their_own_incidents() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    grouper.add(state, located("water_pressure", "mission", T0, MISSION))
    other = grouper.add(state, located("noise", "mission", T0 + 10, MISSION))
    same = grouper.add(state, located("water_pressure", "castro", T0 + 20, north(MISSION, 10)))
    unlocated = grouper.add(state, located("flooded_road", "mission", T0 + 30, None))
    assert [other.status, same.status, unlocated.status] == ["opened"] * 3
    assert len(state.incidents) == 4
    assert all(i.districts == (i.district,) for i in state.incidents.values())
    assert unlocated.incident is not None and unlocated.incident.lat is None


def test_without_spatial_rules_grouping_is_by_district_as_before() -> None:
    grouper = IncidentGrouper(SETTINGS.model_copy(update={"spatial_rules": ()}))
    state = grouper.new_state()
    grouper.add(state, located("water_pressure", "mission", T0, MISSION))
    apart = grouper.add(state, located("flooded_road", "mission", T0 + 60, north(MISSION, 50)))
    assert apart.status == "opened"


def test_a_located_incident_replays_and_unpickles_to_the_same_place() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    events = []
    for kind, ts, point in [("water_pressure", T0, MISSION),
                            ("flooded_road", T0 + 60, north(MISSION, 200)),
                            ("traffic_slowdown", T0 + 90, north(MISSION, -150))]:
        events += grouper.add(state, located(kind, "mission", ts, point)).events
    incident = next(iter(state.incidents.values()))
    assert replay(reversed(events)) == incident
    assert pickle.loads(pickle.dumps(incident)) == incident
    assert copy.deepcopy(state) == state
    older = Incident.__new__(Incident)   # a snapshot taken before incidents had a place
    place = ("districts", "lat", "lon", "radius_m")
    older.__setstate__({k: v for k, v in incident.__getstate__().items() if k not in place})
    assert older.districts == () and older.lat is None and older.radius_m == 0.0


def test_a_wrong_position_is_refused_naming_the_alert() -> None:
    record = located("water_pressure", "mission", T0, MISSION)
    for change in ({"lat": 91.0}, {"lon": None}, {"lat": "north"}):
        with pytest.raises(InvalidAlert) as caught:
            IncidentGrouper(SETTINGS).add(GroupingState(), {**record, **change})
        assert record["id"] in str(caught.value)


def test_spatial_rules_name_known_kinds_and_departments_once() -> None:
    settings = SETTINGS.model_copy(update={"spatial_rules": (
        *SETTINGS.spatial_rules,
        SETTINGS.spatial_rules[0].model_copy(update={"departments": ("plumbing",)}),
    )})
    problems = incident_problems(settings, alert_kinds={"water_pressure", "flooded_road"},
                                 district_ids=["mission"])
    assert ("incidents.spatial_rules[1].name", "'burst-main' is repeated") in problems
    assert ("incidents.spatial_rules[0].kinds", "'traffic_slowdown' is not a kind") in problems
    assert ("incidents.spatial_rules[1].departments",
            "'plumbing' is not a department id") in problems
