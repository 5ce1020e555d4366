"""Readings with a place: the payload's lat/lon, the topic without a district, and a parser
that places readings by position (Riverton: harbour is lon 11.64-11.67, lat 48.13-48.15)."""

from __future__ import annotations

import json

import pytest

from models.errors import InvalidReading
from models.geography import Locator
from models.placement import Placed, Placement
from models.readings import Reading, ReadingParser, encode
from settings.config import Settings

NOW = 1_795_669_200.0  # 2026-11-26T05:00:00Z
HARBOUR = (48.14, 11.655)
OLD_TOWN = (48.14, 11.565)


def payload(**fields) -> bytes:
    record = {"device_id": "bus-1", "kind": "pm25", "value": 12.5, "unit": "ug/m3",
              "ts": "2026-11-26T04:59:59.500Z"}
    record.update(fields)
    return json.dumps(record).encode()


@pytest.fixture(scope="module")
def bare(base_settings: Settings) -> ReadingParser:
    """The bridge's parser: no placement."""
    return ReadingParser(base_settings.kinds, base_settings.district_ids())


def placing(settings: Settings, seen: list | None = None,
            positions: dict | None = None) -> ReadingParser:
    placement = Placement(Locator(settings.geography.districts), positions)
    return ReadingParser(settings.kinds, settings.district_ids(), placement=placement,
                         on_mismatch=lambda device, placed: (
                             [] if seen is None else seen).append((device, placed)))


def test_a_payloads_position_is_kept_and_travels_to_kafka(bare: ReadingParser) -> None:
    reading = bare.parse(payload(lat=48.14, lon=11.655), "city/harbour/pm25/bus-1", NOW)
    assert (reading.lat, reading.lon) == HARBOUR
    assert bare.parse(encode(reading), None, NOW) == reading
    plain = bare.parse(payload(), "city/harbour/pm25/bus-1", NOW)
    assert plain.lat is None and b"lat" not in encode(plain)


@pytest.mark.parametrize(("fields", "words"), [
    ({"lat": 48.14}, "'lon' is missing"),
    ({"lat": 91.0, "lon": 11.6}, "'lat'"),
    ({"lat": 48.1, "lon": "11.6"}, "'lon'"),
    ({"lat": True, "lon": 11.6}, "'lat'"),
    ({"lat": 48.1, "lon": 1e400}, "'lon'"),  # json reads it as inf
])
def test_a_bad_position_is_refused_naming_the_field(
    bare: ReadingParser, fields: dict, words: str
) -> None:
    with pytest.raises(InvalidReading) as info:
        bare.parse(payload(**fields), "city/harbour/pm25/bus-1", NOW)
    assert info.value.reason == "bad_position" and words in info.value.detail


def test_a_topic_without_a_district_leaves_it_to_the_flow(bare: ReadingParser) -> None:
    reading = bare.parse(payload(lat=48.14, lon=11.655), "city/-/pm25/bus-1", NOW)
    assert reading.district == ""


def test_the_placing_parser_uses_the_position_and_reports_a_mismatch(
    base_settings: Settings,
) -> None:
    seen: list[tuple[str, Placed]] = []
    parser = placing(base_settings, seen)
    moved = parser.parse(payload(lat=48.14, lon=11.655), "city/old-town/pm25/bus-1", NOW)
    assert moved.district == "harbour"
    assert seen == [("bus-1", Placed("harbour", "old-town", HARBOUR))]
    assert parser.parse(payload(lat=48.14, lon=11.655), "city/-/pm25/bus-1", NOW).district == (
        "harbour")
    assert len(seen) == 1


def test_outside_every_district_is_outside_city(base_settings: Settings) -> None:
    with pytest.raises(InvalidReading) as info:
        placing(base_settings).parse(payload(lat=48.354, lon=11.786), "city/-/pm25/bus-1", NOW)
    assert info.value.reason == "outside_city" and "48.354000" in info.value.detail


def test_a_registered_position_places_a_reading_that_has_none(base_settings: Settings) -> None:
    parser = placing(base_settings, positions={"bus-1": OLD_TOWN})
    reading = parser.parse(payload(), "city/-/pm25/bus-1", NOW)
    assert reading == Reading("bus-1", "old-town", "pm25", 12.5, "ug/m3", NOW - 0.5,
                              None, *OLD_TOWN)  # it carries its device's position on
    with pytest.raises(InvalidReading, match="'bus-9' has a registered position") as info:
        parser.parse(payload(device_id="bus-9"), "city/-/pm25/bus-9", NOW)
    assert info.value.reason == "unknown_district"


def test_a_placement_follows_a_moving_device(base_settings: Settings) -> None:
    placement = Placement(Locator(base_settings.geography.districts))
    assert placement.place("bus-1", *HARBOUR, given=None).district == "harbour"
    assert placement.place("bus-1", *OLD_TOWN, given=None).district == "old-town"
    assert placement.place("bus-1", None, None, given="riverside") == Placed(
        "riverside", "riverside", None)
