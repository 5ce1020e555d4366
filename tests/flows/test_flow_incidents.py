"""Alerts become incidents in the city flow: a storm in one district is a handful of incidents."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from connectors.kafka import KafkaRecord
from models.readings import Reading
from settings.config import Settings
from settings.incidents import SpatialRule
from tests.support.flow import batch_record, run_flow

pytestmark = pytest.mark.timeout(120)

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z; windows are 10 s
NOW = T + 7200.0


def storm(district: str = "industrial-east", *, seconds: int = 1800) -> list[KafkaRecord]:
    """PM2.5 far above the critical level every 5 s, alternating with a warning-level value."""
    items = []
    for n, offset in enumerate(range(0, seconds, 5)):
        value = 300.0 if n % 2 else 90.0
        reading = Reading(f"pm-{n % 3}", district, "pm25", value, "ug/m3", T + offset)
        items.append(batch_record([reading]))
    return items


def run(settings: Settings, items: list[KafkaRecord]) -> tuple[list[dict], list[KafkaRecord]]:
    out = run_flow(settings, items, batch_size=50, clock=lambda: NOW)
    # (the incidents sink also gets each event's copies for the departments' dispatch queues)
    return out.alerts, [r for r in out.incidents if r.topic is None]


@pytest.fixture(scope="module")
def stormed(base_settings: Settings) -> tuple[list[dict], list[KafkaRecord]]:
    return run(base_settings, storm())


def test_an_alert_storm_in_one_district_becomes_a_handful_of_incidents(
    stormed: tuple[list[dict], list[KafkaRecord]],
) -> None:
    alerts, records = stormed
    everything = [orjson.loads(r.value) for r in records]
    events = [e for e in everything if e["action"] in ("open", "alert")]
    assert len(alerts) >= 150
    opened = [e for e in events if e["action"] == "open"]
    assert 1 <= len(opened) <= 5, [e["incident"]["title"] for e in opened]
    # every alert is accounted for once, in the incident it joined
    assert len(events) == len(alerts)
    assert {e["details"]["id"] for e in events} == {a["id"] for a in alerts}
    final: dict[str, dict[str, Any]] = {}
    for event in events:
        final[event["incident_id"]] = event["incident"]
    pm25 = [i for i in final.values() if i["kind"] == "pm25"]
    (incident,) = pm25
    assert sum(i["alert_count"] for i in final.values()) == len(alerts)
    assert incident["alert_count"] >= len([a for a in alerts if a["kind"] == "pm25"])
    assert incident["state"] == "open"
    assert "critical" in {a["severity"] for a in alerts if a["kind"] == "pm25"}
    # the flow's clock is two hours past the storm and no one acknowledged: it escalated
    escalations = [e for e in everything
                   if e["action"] == "escalate" and e["incident_id"] == incident["id"]]
    assert escalations and escalations[-1]["incident"]["severity"] == "emergency"
    assert incident["district"] == "industrial-east"
    (opening,) = [e for e in opened if e["incident_id"] == incident["id"]]
    assert opening["departments"] == ["environment-bureau"]
    # an emergency is also routed to emergency management (config.yaml's routing)
    assert incident["departments"] == ["environment-bureau", "emergency-management"]


def test_incident_records_are_keyed_by_incident_and_numbered_in_order(
    stormed: tuple[list[dict], list[KafkaRecord]],
) -> None:
    _alerts, records = stormed
    sequences: dict[str, list[int]] = {}
    for record in records:
        event = orjson.loads(record.value)
        assert record.key == event["incident_id"].encode()
        assert event["id"] == f"{event['incident_id']}:{event['sequence']:06d}"
        assert event["incident"]["sequence"] == event["sequence"]
        sequences.setdefault(event["incident_id"], []).append(event["sequence"])
    for numbers in sequences.values():
        assert numbers == list(range(1, len(numbers) + 1))


def test_a_rerun_of_the_same_readings_yields_the_same_incident_and_event_ids(
    base_settings: Settings, stormed: tuple[list[dict], list[KafkaRecord]],
) -> None:
    _alerts, first = stormed
    _again, second = run(base_settings, storm())
    ids = [orjson.loads(r.value)["id"] for r in first]
    assert Counter(ids) == Counter(orjson.loads(r.value)["id"] for r in second)
    assert len(set(ids)) == len(ids)


def test_storms_in_two_districts_are_separate_incidents(base_settings: Settings) -> None:
    items = storm("industrial-east", seconds=300) + storm("harbour", seconds=300)
    alerts, records = run(base_settings, sorted(items, key=lambda r: orjson.loads(r.value)["ts"]))
    district_of = {a["id"]: a["district"] for a in alerts}
    events = [orjson.loads(r.value) for r in records]
    by_district = Counter(e["incident"]["district"] for e in events if e["action"] == "open")
    assert {"industrial-east", "harbour"} <= set(by_district)   # (and the city's own, "city")
    for event in events:
        if event["action"] in ("open", "alert"):
            assert district_of[event["details"]["id"]] == event["incident"]["district"]


def test_the_flows_incident_titles_use_the_names_people_read(
    stormed: tuple[list[dict], list[KafkaRecord]],
) -> None:
    _, records = stormed
    titles = {orjson.loads(r.value)["incident"]["title"] for r in records}
    assert "Fine particulate matter PM2.5 past its threshold in Industrial East" in titles
    assert not [t for t in titles if "industrial-east" in t or "pm25" in t]


def test_alerts_carry_their_place_and_a_spatial_rule_joins_neighbouring_districts(
    base_settings: Settings,
) -> None:
    """PM2.5 in Industrial East and noise in Harbour next door (centroids 2.2 km apart): with a
    spatial rule of 3 km they are one incident touching both; without, two."""
    noise = [batch_record([Reading(f"nz-{n % 2}", "harbour", "noise", 95.0, "dBA", T + 5 * n)])
             for n in range(60)]
    items = sorted(storm("industrial-east", seconds=300) + noise,
                   key=lambda r: orjson.loads(r.value)["ts"][0])
    rule = SpatialRule(name="works", kinds=("pm25", "noise"), within_m=3000, within_s=600,
                       departments=("operations",))
    spatial = base_settings.model_copy(update={"incidents": base_settings.incidents.model_copy(
        update={"spatial_rules": (rule,)})})
    centroids = {d.id: d.centroid for d in base_settings.districts}
    alerts, records = run(spatial, items)
    for alert in alerts:
        if alert["district"] in centroids:
            assert [alert["lon"], alert["lat"]] == list(centroids[alert["district"]])
    final: dict[str, dict[str, Any]] = {}
    for event in (orjson.loads(r.value) for r in records):
        final[event["incident_id"]] = event["incident"]
    (joined,) = [i for i in final.values() if "pm25" in i["kinds"]]
    assert set(joined["kinds"]) >= {"pm25", "noise"}
    assert sorted(joined["districts"]) == ["harbour", "industrial-east"]
    assert "operations" in joined["departments"] and joined["radius_m"] > 1000
    assert "works" in joined["correlations"]

    _alerts, apart = run(base_settings, items)
    kinds = [orjson.loads(r.value)["incident"]["kinds"] for r in apart]
    assert not [k for k in kinds if {"pm25", "noise"} <= set(k)]
