"""NGSI-LD translation and filters, pure: Smart Data Model entities of cityheart's rows, the ``q``
language, geo-queries and the temporal representation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.ngsi_ld import (
    KindInfo,
    alert_entity,
    context_document,
    device_entity,
    parse_entity_id,
    simplified,
    temporal_entity,
    vital_entities,
)
from models.ngsi_ld_query import QueryError, distance_m, parse_geo, parse_q

CENTROIDS = {"old-town": (11.565, 48.14), "harbour": (11.655, 48.14)}
KINDS = {"pm25": KindInfo("pm25", "ug/m3"), "noise": KindInfo("noise", "dB"),
         "power_load": KindInfo("power_load", "MW")}


def vital(district: str, kind: str, mean: float, end: str = "2026-12-07T12:00:00.000Z") -> dict:
    return {"district": district, "kind": kind, "mean": mean, "unit": KINDS[kind].unit,
            "window_end": end}


def entities() -> list[dict]:
    return vital_entities(
        [vital("harbour", "pm25", 53.0), vital("old-town", "pm25", 23.0),
         vital("harbour", "noise", 62.0, "2026-12-07T11:59:00.000Z"),
         vital("old-town", "power_load", 4.5)], KINDS, CENTROIDS)


def test_vitals_become_one_smart_data_model_entity_per_district_and_type() -> None:
    by_id = {e["id"]: e for e in entities()}
    assert sorted(by_id) == [
        "urn:ngsi-ld:AirQualityObserved:harbour", "urn:ngsi-ld:AirQualityObserved:old-town",
        "urn:ngsi-ld:CityVitalObserved:old-town", "urn:ngsi-ld:NoiseLevelObserved:harbour"]
    air = by_id["urn:ngsi-ld:AirQualityObserved:harbour"]
    assert air["type"] == "AirQualityObserved"
    assert air["pm25"] == {"type": "Property", "value": 53.0,
                           "observedAt": "2026-12-07T12:00:00.000Z", "unitCode": "GQ"}
    assert air["location"] == {"type": "GeoProperty",
                               "value": {"type": "Point", "coordinates": [11.655, 48.14]}}
    assert by_id["urn:ngsi-ld:NoiseLevelObserved:harbour"]["LAeq"]["value"] == 62.0
    assert by_id["urn:ngsi-ld:CityVitalObserved:old-town"]["power_load"]["value"] == 4.5
    assert parse_entity_id("urn:ngsi-ld:AirQualityObserved:old-town") == (
        "AirQualityObserved", "old-town")
    assert parse_entity_id("urn:ngsi-ld:Car:1") is None


def test_the_context_names_every_term_the_entities_use() -> None:
    terms = context_document(KINDS)["@context"]
    for entity in entities():
        assert entity["type"] in terms
        assert all(name in terms for name in entity if name not in ("id", "type"))
    assert terms["pm25"].startswith("https://smartdatamodels.org/")


def test_devices_and_alerts_are_placed_where_known_else_at_their_district() -> None:
    placed = device_entity({"device_id": "pm25-1", "district": "harbour", "kind": "pm25",
                            "last_seen": "2026-12-07T11:59:00.000Z", "value": 40.0,
                            "unit": "ug/m3", "lat": 48.141, "lon": 11.651}, CENTROIDS)
    assert placed["location"]["value"]["coordinates"] == [11.651, 48.141]
    assert placed["controlledProperty"]["value"] == ["pm25"]
    assert simplified(placed)["pm25"] == 40.0
    alert = alert_entity({"id": "a-1", "district": "old-town", "kind": "noise",
                          "severity": "critical", "ts": "2026-12-07T11:00:00.000Z",
                          "rule": "threshold", "message": "loud"}, CENTROIDS)
    assert (alert["id"], alert["severity"]["value"], alert["category"]["value"]) == (
        "urn:ngsi-ld:Alert:a-1", "high", "environment")
    assert alert["location"]["value"]["coordinates"] == [11.565, 48.14]


@pytest.mark.parametrize(("q", "expected"), [
    ("pm25>30", ["AirQualityObserved:harbour"]),
    ("pm25>=23;pm25<=23", ["AirQualityObserved:old-town"]),
    ('areaServed=="harbour"', ["AirQualityObserved:harbour", "NoiseLevelObserved:harbour"]),
    ('areaServed!="harbour"', ["AirQualityObserved:old-town", "CityVitalObserved:old-town"]),
    ("pm25==20..30", ["AirQualityObserved:old-town"]),
    ("pm25==23,53", ["AirQualityObserved:harbour", "AirQualityObserved:old-town"]),
    ("LAeq|power_load", ["CityVitalObserved:old-town", "NoiseLevelObserved:harbour"]),
    ("pm25>30;LAeq", []),
    ('areaServed~="^old"', ["AirQualityObserved:old-town", "CityVitalObserved:old-town"]),
    ("dateObserved<2026-12-07T12:00:00.000Z", ["NoiseLevelObserved:harbour"]),
    ("pm25==\"53\"", []),
])
def test_q_compares_attribute_values(q: str, expected: list[str]) -> None:
    match = parse_q(q)
    found = [e["id"].removeprefix("urn:ngsi-ld:") for e in entities() if match(e)]
    assert found == expected


@pytest.mark.parametrize("q", ["pm25>>3", "pm25>", "", "a;;b", 'name=="open', "x~=("])
def test_q_that_does_not_parse_is_refused_naming_q(q: str) -> None:
    with pytest.raises(QueryError) as refused:
        parse_q(q)
    assert refused.value.parameter == "q"


@given(st.text(max_size=30))
def test_q_parses_or_raises_query_error_nothing_else(text: str) -> None:
    try:
        match = parse_q(text)
    except QueryError:
        return
    for entity in entities():
        assert match(entity) in (True, False)


def test_geo_queries_near_within_and_disjoint() -> None:
    assert 6600 < distance_m(CENTROIDS["old-town"], CENTROIDS["harbour"]) < 6800
    near = parse_geo("near;maxDistance==1000", "Point", "[11.66,48.14]")
    assert {e["id"] for e in entities() if near(e)} == {
        "urn:ngsi-ld:AirQualityObserved:harbour", "urn:ngsi-ld:NoiseLevelObserved:harbour"}
    far = parse_geo("near;minDistance==1000", "Point", "[11.66,48.14]")
    assert all(far(e) == ("old-town" in e["id"]) for e in entities())
    ring = "[[[11.55,48.13],[11.58,48.13],[11.58,48.15],[11.55,48.15],[11.55,48.13]]]"
    within = parse_geo("within", "Polygon", ring)
    assert all(within(e) == ("old-town" in e["id"]) for e in entities())
    disjoint = parse_geo("disjoint", "Polygon", ring)
    assert all(disjoint(e) != within(e) for e in entities())


@pytest.mark.parametrize(("georel", "geometry", "coordinates", "parameter"), [
    ("close", "Point", "[1,2]", "georel"),
    ("near", "Point", "[1,2]", "georel"),
    ("near;maxDistance==-5", "Point", "[1,2]", "georel"),
    ("near;maxDistance==5", "Point", "[1]", "coordinates"),
    ("within", "Polygon", "[[1,2]]", "coordinates"),
    ("within", "Polygon", "not json", "coordinates"),
    ("within", None, "[]", "geometry"),
])
def test_geo_queries_that_make_no_sense_are_refused_naming_the_parameter(
    georel: str, geometry: str | None, coordinates: str, parameter: str,
) -> None:
    with pytest.raises(QueryError) as refused:
        parse_geo(georel, geometry, coordinates)
    assert refused.value.parameter == parameter


def test_temporal_entities_list_instances_or_values() -> None:
    points = [("2026-12-07T11:50:00.000Z", 62.0, "dB"), ("2026-12-07T12:00:00.000Z", 63.0, "dB")]
    full = temporal_entity("urn:ngsi-ld:NoiseLevelObserved:harbour", "NoiseLevelObserved",
                           {"LAeq": points})
    assert [(i["observedAt"], i["value"], i["unitCode"]) for i in full["LAeq"]] == [
        ("2026-12-07T11:50:00.000Z", 62.0, "2N"), ("2026-12-07T12:00:00.000Z", 63.0, "2N")]
    values = temporal_entity("urn:ngsi-ld:NoiseLevelObserved:harbour", "NoiseLevelObserved",
                             {"LAeq": points}, values_only=True)
    assert values["LAeq"] == {"type": "Property", "values": [
        [62.0, "2026-12-07T11:50:00.000Z"], [63.0, "2026-12-07T12:00:00.000Z"]]}
