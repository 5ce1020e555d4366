"""ReadingParser.check_batch checks a batch at once (series judged once, positions placed in
bulk) and must give exactly what checking the readings one by one gives: the same kept batch,
the same refusals (reason, detail, payload) in the same order, the same mismatches reported.
Riverton's districts are a grid of 0.03 x 0.02 degree cells (lon 11.55-11.67, lat 48.13-48.17)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.geography import Locator
from models.placement import Placement
from models.reading_batch import ReadingBatch
from models.readings import Reading, ReadingParser
from settings.config import Settings

NOW = 1_795_669_200.0

# a registered device inside harbour, one outside the city, and devices with no registration
REGISTERED = {"d0": (48.14, 11.655), "d1": (48.30, 11.30)}
DEVICES = ["d0", "d1", "d2", "d3"]
# cell centres, shared borders and corners (the smallest district id wins), outside the city
LATS = [48.14, 48.16, 48.15, 48.13, 48.17, 48.12, 48.2]
LONS = [11.565, 11.595, 11.58, 11.61, 11.64, 11.655, 11.55, 11.67, 11.5, 11.7]


def readings(settings_: Settings) -> st.SearchStrategy[list[Reading]]:
    kinds = list(settings_.kinds)
    units = sorted({u for k in settings_.kinds.values() for u in (k.unit, *k.convert)})
    reading = st.builds(
        Reading,
        device_id=st.sampled_from(DEVICES),
        district=st.sampled_from([*settings_.district_ids()[:4], "", "atlantis"]),
        kind=st.sampled_from([*kinds[:5], "smog"]),
        value=st.one_of(st.floats(-10, 3000), st.sampled_from([float("nan"), float("inf"),
                                                                -0.0, 1000.0, 2000.0])),
        unit=st.sampled_from([*units, "furlongs"]),
        ts=st.one_of(st.floats(NOW - 3600, NOW + 600), st.just(NOW + 300.0)),
        seq=st.one_of(st.none(), st.integers(0, 9)),
        lat=st.one_of(st.none(), st.sampled_from(LATS)),
        lon=st.sampled_from(LONS),
    ).map(lambda r: r if r.lat is not None else Reading(
        r.device_id, r.district, r.kind, r.value, r.unit, r.ts, r.seq))
    return st.lists(reading, max_size=40)


Factory = Callable[[list], ReadingParser]


@pytest.fixture(scope="module")
def factories(base_settings: Settings) -> dict[str, Factory]:
    locator = Locator(base_settings.geography.districts)

    def placing(seen: list) -> ReadingParser:
        return ReadingParser(base_settings.kinds, base_settings.district_ids(),
                             placement=Placement(locator, REGISTERED),
                             on_mismatch=lambda device, placed: seen.append((device, placed)))

    def bare(seen: list) -> ReadingParser:
        return ReadingParser(base_settings.kinds, base_settings.district_ids())

    return {"placing": placing, "bare": bare}


@pytest.mark.parametrize("parser_kind", ["placing", "bare"])
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_batch_checked_at_once_is_checked_as_reading_by_reading(
    factories: dict[str, Factory], base_settings: Settings, parser_kind: str, data: st.DataObject
) -> None:
    batch = ReadingBatch.of(data.draw(readings(base_settings)))
    seen_at_once: list = []
    seen_each: list = []
    kept, refused = factories[parser_kind](seen_at_once).check_batch(batch, NOW)
    kept_each, refused_each = factories[parser_kind](seen_each)._check_each(batch, NOW)
    assert kept == kept_each
    assert [(e.reason, e.detail, e.payload) for e in refused] == [
        (e.reason, e.detail, e.payload) for e in refused_each]
    assert seen_at_once == seen_each


def test_every_way_a_reading_fails_is_covered(
    factories: dict[str, Factory], base_settings: Settings
) -> None:
    """The refusal reasons the property above can reach, so it does compare them."""
    batch = ReadingBatch.of([
        Reading("d2", "harbour", "pm25", 5.0, "ug/m3", NOW, lat=48.30, lon=11.30),
        Reading("d2", "", "pm25", 5.0, "ug/m3", NOW),
        Reading("d2", "atlantis", "pm25", 5.0, "ug/m3", NOW),
        Reading("d2", "harbour", "smog", 5.0, "ug/m3", NOW),
        Reading("d2", "harbour", "pm25", 5.0, "furlongs", NOW),
        Reading("d2", "harbour", "pm25", float("nan"), "ug/m3", NOW),
        Reading("d2", "harbour", "pm25", 5000.0, "ug/m3", NOW),
        Reading("d2", "harbour", "pm25", 5.0, "ug/m3", NOW + 301),
        Reading("d0", "old-town", "pm25", 0.5, "mg/m3", NOW),  # registered in harbour
    ])
    seen: list = []
    kept, refused = factories["placing"](seen).check_batch(batch, NOW)
    assert [e.reason for e in refused] == [
        "outside_city", "unknown_district", "unknown_district", "unknown_kind", "unknown_unit",
        "not_finite", "out_of_range", "future_timestamp"]
    assert kept.readings() == [
        Reading("d0", "harbour", "pm25", 500.0, "ug/m3", NOW, None, 48.14, 11.655)]
    assert [(device, placed.given, placed.district) for device, placed in seen] == [
        ("d0", "old-town", "harbour")]
