"""Alerts into incidents: storms collapse, severity grows, replays change nothing."""

from __future__ import annotations

import json
import math
import pickle
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.incidents import (
    GroupingState,
    IncidentGrouper,
    InvalidAlert,
    incident_id,
    parse_alert,
)
from alerts.lifecycle import act
from alerts.rules import Alert, alert_id
from settings.incidents import IncidentSettings

T0 = 1_795_669_200.0   # 2026-11-26T05:00:00Z, a multiple of 900 s
SETTINGS = IncidentSettings.model_validate({
    "grouping_window_s": 900,
    "departments": [
        {"id": "environment-bureau", "name": "Environment Bureau", "sla_ack_s": 900,
         "sla_resolve_s": 14400},
        {"id": "water-authority", "name": "Water Authority", "sla_ack_s": 300,
         "sla_resolve_s": 7200},
        {"id": "emergency-management", "name": "Emergency Management", "sla_ack_s": 120,
         "sla_resolve_s": 3600},
        {"id": "operations", "name": "Operations", "sla_ack_s": 600, "sla_resolve_s": 14400},
    ],
    "routing": {
        "rules": [
            {"kinds": ["pm25", "no2", "noise"], "departments": ["environment-bureau"]},
            {"kinds": ["water_level", "rainfall"], "departments": ["water-authority"]},
            {"kinds": ["water_level"], "min_severity": "critical",
             "departments": ["emergency-management"]},
        ],
        "default": ["operations"],
    },
    "correlation": [{"id": "flood-risk", "kinds": ["rainfall", "water_level"],
                     "window_s": 3600, "title": "Flood risk"}],
    "suppression": [{"id": "pump-works", "districts": ["harbour"], "kinds": ["water_level"],
                     "start": "2026-11-26T06:00:00Z", "end": "2026-11-26T08:00:00Z"},
                    {"id": "recalibration", "devices": ["nz-old-town-004"],
                     "start": "2026-11-26T05:00:00Z", "end": "2026-11-26T06:00:00Z"}],
})


def _alert(kind: str, district: str, ts: float, severity: str = "warning",
           **extra: object) -> dict:
    """An ``alerts`` wire record, made by the flow's own Alert type."""
    start = ts - ts % 10
    rule = f"{kind}.threshold"
    record = Alert(
        id=alert_id(rule, district, kind, severity, start), rule=rule, district=district,
        kind=kind, severity=severity, value=99.0, threshold=55.5, direction="above",
        stat="mean", unit="u", window_start=start, window_end=start + 10, ts=ts,
        message=f"{kind} in {district} is above the {severity} level",
    ).record(emitted_at=ts + 0.4)
    return {**record, **extra}


def test_an_alert_storm_of_1000_alerts_becomes_a_handful_of_incidents() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    kinds = ("pm25", "no2", "noise")
    alerts = [
        _alert(kinds[n % 3], "old-town", T0 + 10 * (n // 3) + 1,
               "critical" if n % 7 == 0 else "warning")
        for n in range(1000)
    ]
    statuses = Counter(grouper.add(state, alert).status for alert in alerts)
    incidents = list(state.incidents.values())
    assert statuses == {"opened": 3, "joined": 997}
    assert len(incidents) == 3
    assert sorted(i.kind for i in incidents) == sorted(kinds)
    assert sum(i.alert_count for i in incidents) == 1000
    assert all(i.severity == "critical" for i in incidents)
    assert all(i.departments == ("environment-bureau",) for i in incidents)
    assert sorted(i.last_alert_at - i.first_alert_at for i in incidents) == [3320, 3320, 3330]


def test_severity_and_count_grow_and_each_alert_is_an_event() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    opened = grouper.add(state, _alert("water_level", "riverside", T0 + 5))
    joined = grouper.add(state, _alert("water_level", "riverside", T0 + 65, "critical"))
    assert (opened.status, joined.status) == ("opened", "joined")
    assert opened.incident and joined.incident and opened.incident.id == joined.incident.id
    assert (opened.incident.severity, joined.incident.severity) == ("warning", "critical")
    assert joined.incident.alert_count == 2
    assert [e.action for e in opened.events + joined.events] == ["open", "alert"]
    assert joined.events[0].details["severity"] == "critical"
    assert joined.incident.departments == ("water-authority", "emergency-management")
    assert joined.events[0].departments == joined.incident.departments


def test_ids_are_deterministic_so_a_replay_creates_nothing_new() -> None:
    grouper = IncidentGrouper(SETTINGS)
    alerts = [_alert("pm25", "harbour", T0 + 100 + 30 * n) for n in range(5)]
    first, second = grouper.new_state(), grouper.new_state()
    events = [e for a in alerts for e in grouper.add(first, a).events]
    again = [e for a in alerts for e in grouper.add(second, a).events]
    assert [e.id for e in events] == [e.id for e in again]
    assert list(first.incidents) == [incident_id("pm25.threshold", "harbour", "pm25", T0)]
    replayed = [grouper.add(first, a) for a in alerts]
    assert {g.status for g in replayed} == {"duplicate"}
    assert all(g.events == () for g in replayed)
    assert first.incidents == second.incidents


def test_a_quiet_gap_longer_than_the_window_opens_a_new_incident() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    grouper.add(state, _alert("pm25", "university", T0 + 10))
    assert grouper.add(state, _alert("pm25", "university", T0 + 910)).status == "joined"
    later = grouper.add(state, _alert("pm25", "university", T0 + 1811))
    assert later.status == "opened" and len(state.incidents) == 2
    assert later.incident and later.incident.id == incident_id(
        "pm25.threshold", "university", "pm25", T0 + 1800)
    assert grouper.add(state, _alert("pm25", "harbour", T0 + 20)).status == "opened"
    assert grouper.add(state, _alert("no2", "university", T0 + 20)).status == "opened"


def test_rain_and_rising_water_in_one_district_are_one_incident() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    rain = grouper.add(state, _alert("rainfall", "riverside", T0 + 10))
    water = grouper.add(state, _alert("water_level", "riverside", T0 + 2400, "critical"))
    elsewhere = grouper.add(state, _alert("water_level", "old-town", T0 + 2400))
    assert (rain.status, water.status, elsewhere.status) == ("opened", "joined", "opened")
    assert water.incident is not None
    assert water.incident.kinds == ("rainfall", "water_level")
    assert water.incident.correlations == ("flood-risk",)
    assert water.incident.title == "Flood risk in riverside"
    assert water.events[0].details["correlation"] == "flood-risk"
    assert water.incident.departments == ("water-authority", "emergency-management")
    again = grouper.add(state, _alert("water_level", "riverside", T0 + 2460))
    assert again.status == "joined" and again.incident and again.incident.alert_count == 3


def test_suppression_windows_silence_a_district_kind_or_a_device() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    rain = grouper.add(state, _alert("rainfall", "harbour", T0 + 3590))
    maintenance = grouper.add(state, _alert("water_level", "harbour", T0 + 3600, "critical"))
    assert (rain.status, maintenance.status) == ("opened", "suppressed")
    assert maintenance.suppressed_by == "pump-works" and maintenance.events == ()
    assert rain.incident and state.incidents[rain.incident.id] == rain.incident
    assert grouper.add(state, _alert("rainfall", "harbour", T0 + 3700)).status == "joined"
    after = grouper.add(state, _alert("water_level", "harbour", T0 + 3 * 3600))
    assert after.status == "opened"   # the window ended at 08:00; the rain is long past
    device = _alert("noise", "old-town", T0 + 60, detector="nz-old-town-004")
    assert grouper.add(state, device).suppressed_by == "recalibration"
    assert all(i.kind != "noise" for i in state.incidents.values())


def test_a_resolved_incident_takes_no_more_alerts() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    opened = grouper.add(state, _alert("pm25", "harbour", T0 + 10))
    assert opened.incident is not None
    incident = opened.incident
    for action, extra in (("acknowledge", {}), ("resolve", {"outcome": "false_alarm"})):
        incident, event = act(incident, action, actor="ana", at=T0 + 60, **extra)
        assert grouper.apply(state, event) == incident
    fresh = grouper.add(state, _alert("pm25", "harbour", T0 + 120))
    assert fresh.status == "opened" and fresh.incident
    assert fresh.incident.id == f"{incident.id}-2"
    assert grouper.forget(state, before=T0 + 61) == [incident.id]
    assert list(state.incidents) == [fresh.incident.id]


def test_grouping_state_pickles_and_round_trips_through_json() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    for n in range(20):
        grouper.add(state, _alert(("rainfall", "water_level", "pm25")[n % 3], "riverside",
                                  T0 + 45 * n, detector=f"dev-{n % 2}"))
    assert pickle.loads(pickle.dumps(state)) == state
    text = json.dumps(state.to_record())
    assert GroupingState.from_record(json.loads(text)) == state
    restored = GroupingState.from_record(json.loads(text))
    more = _alert("pm25", "riverside", T0 + 45 * 21)
    assert grouper.add(restored, more).status == grouper.add(state, more).status == "joined"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"district": None}, "'district' must be a non-empty string"),
        ({"severity": "major"}, "severity 'major' is not one of"),
        ({"ts": "yesterday"}, "ts 'yesterday' is not a finite number or time"),
        ({"ts": "2026-11-26T05:00:00"}, "is not a finite number or time"),
        ({"ts": None}, "ts None is not a time"),
        ({"value": "high"}, "value 'high' is not a finite number"),
    ],
)
def test_a_broken_alert_is_refused_naming_it(change: dict, fragment: str) -> None:
    record = {**_alert("pm25", "harbour", T0), **change}
    with pytest.raises(InvalidAlert) as caught:
        IncidentGrouper(SETTINGS).add(GroupingState(), record)
    assert fragment in str(caught.value) and record["id"] in str(caught.value)


_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)


@given(st.dictionaries(st.sampled_from(["id", "rule", "district", "kind", "severity", "ts",
                                        "value", "detector", "device_id"]), _VALUES))
def test_any_record_parses_or_raises_invalid_alert(record: dict) -> None:
    try:
        facts = parse_alert(record)
    except InvalidAlert:
        return
    assert math.isfinite(facts.ts) and facts.severity in ("warning", "critical", "emergency")


def test_titles_name_districts_and_kinds_as_config_yaml_does(base_settings) -> None:
    from alerts.incidents import DisplayNames

    grouper = IncidentGrouper(SETTINGS, DisplayNames.from_settings(base_settings))
    state = grouper.new_state()
    pm25 = grouper.add(state, _alert("pm25", "industrial-east", T0 + 10)).incident
    rain = grouper.add(state, _alert("rainfall", "riverside", T0 + 10)).incident
    water = grouper.add(state, _alert("water_level", "riverside", T0 + 2400)).incident
    aqi = _alert("aqi", "university", T0 + 10, rule="aqi-high")
    indicator = grouper.add(state, aqi).incident
    assert pm25 and rain and water and indicator
    assert pm25.title == "Fine particulate matter PM2.5 past its threshold in Industrial East"
    assert rain.title == "Rainfall intensity past its threshold in Riverside"
    assert water.title == "Flood risk in Riverside"
    assert indicator.title == "Air quality index: aqi-high in University Quarter"
