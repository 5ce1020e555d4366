"""SenML packs: RFC 8428 resolution, then each record validated as a single reading.

The example packs follow the shapes of the RFC's own examples (section 5.1), written with
cityheart's names (``<district>/<kind>/<device_id>``) and units.
"""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.errors import InvalidReading
from models.readings import REASONS, Reading, ReadingParser
from models.senml import (
    RELATIVE_TIME_LIMIT,
    SENML_REASONS,
    PackParser,
    PackResult,
    SenmlRecord,
    decode_pack,
    resolve,
)
from models.vitals.records import Rejection
from settings.config import Settings

NOW = 1_795_669_200.0  # 2026-11-26T05:00:00Z


@pytest.fixture(scope="module")
def packs(base_settings: Settings) -> PackParser:
    readings = ReadingParser(base_settings.kinds, base_settings.district_ids(), max_future_s=300)
    return PackParser(readings, max_pack_bytes=65536)


def pack(*records: dict[str, object]) -> bytes:
    return orjson.dumps(list(records))


def reasons(result: PackResult) -> dict[int, str]:
    return {refusal.index: refusal.error.reason for refusal in result.refused}


# -- resolution (RFC 8428 section 4) ------------------------------------------------------------


def test_base_name_time_and_unit_apply_to_later_records_with_relative_times() -> None:
    # the shape of the RFC's section 5.1.2: one sensor, a base time, then t relative to it
    records, refused = resolve([
        {"bn": "harbour/pm25/pm-1", "bt": 1.276020076001e9, "bu": "ug/m3", "bver": 5, "v": 12},
        {"t": -5, "v": 1.2}, {"t": -1, "v": 1.6}, {"u": "mg/m3", "v": 0.002},
    ], NOW)
    assert refused == []
    assert [r.name for r in records] == ["harbour/pm25/pm-1"] * 4
    assert [r.time for r in records] == [1.276020076001e9, 1.276020071001e9,
                                         1.276020075001e9, 1.276020076001e9]
    assert [r.unit for r in records] == ["ug/m3", "ug/m3", "ug/m3", "mg/m3"]
    assert records[1].resolved() == {"n": "harbour/pm25/pm-1", "u": "ug/m3", "v": 1.2,
                                     "t": 1.276020071001e9}


def test_a_later_base_name_replaces_the_earlier_one_and_base_time_carries_on() -> None:
    # section 5.1.6: the last record uses the third record's base name, the first's base time
    records, _ = resolve([
        {"bn": "harbour/noise/", "bt": 1.320078429e9, "n": "n-1", "u": "dBA", "v": 55},
        {"n": "n-2", "u": "dBA", "v": 56},
        {"bn": "old-town/noise/", "n": "n-3", "u": "dBA", "v": 57},
        {"n": "n-4", "u": "dBA", "v": 58},
    ], NOW)
    assert [(r.name, r.time) for r in records] == [
        ("harbour/noise/n-1", 1.320078429e9), ("harbour/noise/n-2", 1.320078429e9),
        ("old-town/noise/n-3", 1.320078429e9), ("old-town/noise/n-4", 1.320078429e9),
    ]


def test_a_record_of_base_fields_only_is_no_measurement_but_sets_them() -> None:
    # section 5.1.7: the first record only names the device
    records, refused = resolve([{"bn": "harbour/pm25/pm-1", "bu": "ug/m3"}, {"v": 3}], NOW)
    assert refused == []
    assert records == [SenmlRecord(1, "harbour/pm25/pm-1", NOW, unit="ug/m3", value=3.0)]


def test_base_value_and_base_sum_are_added() -> None:
    records, _ = resolve([{"bn": "x", "bv": 10, "bs": 100, "v": 2.5, "s": 1},
                          {"v": -1}, {"s": 5}], NOW)
    assert [(r.value, r.sum) for r in records] == [(12.5, 101.0), (9.0, 100.0), (None, 105.0)]


@given(
    base=st.floats(-1e6, 1e6, allow_nan=False),
    offset=st.floats(-1e6, 1e6, allow_nan=False),
    now=st.floats(RELATIVE_TIME_LIMIT + 1e6, 4e9),
)
@hsettings(max_examples=200, deadline=None)
def test_times_below_2_28_are_relative_to_now(base: float, offset: float, now: float) -> None:
    (record,), _ = resolve([{"n": "a", "bt": base, "t": offset, "v": 1}], now)
    assert record.time == now + (base + offset)


@given(
    absolute=st.floats(RELATIVE_TIME_LIMIT, 4e9),
    offset=st.floats(-1e4, 1e4, allow_nan=False),
    now=st.floats(RELATIVE_TIME_LIMIT, 4e9),
)
@hsettings(max_examples=200, deadline=None)
def test_times_from_2_28_on_are_absolute_whatever_now(
    absolute: float, offset: float, now: float
) -> None:
    (first, second), _ = resolve([{"bn": "a", "bt": absolute, "v": 1},
                                  {"t": offset, "v": 2}], now)
    assert first.time == absolute
    total = absolute + offset
    assert second.time == (total if total >= RELATIVE_TIME_LIMIT else now + total)


@pytest.mark.parametrize(
    ("records", "reason", "words"),
    [
        ([{"n": "a", "v": 1, "foo_": 1}], "must_understand", "'foo_'"),
        ([{"bn": "a", "bver": 11}, {"v": 1}], "unsupported_version", "bver 11"),
        ([{"bver": 10, "n": "a", "v": 1}, {"bver": 5, "n": "b", "v": 1}],
         "unsupported_version", "disagree"),
        ([{"bver": "10", "n": "a", "v": 1}], "unsupported_version", "'10'"),
        ([{"bn": 7, "v": 1}], "wrong_type", "'bn'"),
        ([{"n": "a", "v": 1}, {"bt": "yesterday", "v": 2}], "wrong_type", "record 1"),
    ],
)
def test_a_whole_pack_is_refused_for_what_changes_every_record(
    records: list[object], reason: str, words: str
) -> None:
    payload = orjson.dumps(records)
    with pytest.raises(InvalidReading) as caught:
        resolve(records, NOW, payload=payload)
    assert caught.value.reason == reason
    assert words in caught.value.detail
    assert caught.value.payload == payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"{oops", "invalid_json"), (b'{"n": "a", "v": 1}', "not_a_pack"), (b"[]", "not_a_pack"),
     (b"[" + b'{"n":"a","v":1},' * 2000 + b"{}]", "oversized")],
)
def test_what_is_not_a_pack_is_refused_whole(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidReading) as caught:
        decode_pack(payload, max_bytes=16384)
    assert caught.value.reason == reason


def test_unknown_fields_without_the_underscore_are_ignored() -> None:
    (record,), refused = resolve([{"n": "a", "v": 1, "lora_snr": 7.5}], NOW)
    assert refused == [] and record.value == 1.0


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("not a record", "not_an_object"),
        ({"n": "a"}, "missing_field"),
        ({"x": 1}, "missing_field"),
        ({"n": "a", "v": 1, "vs": "1"}, "bad_record"),
        ({"n": "-a", "v": 1}, "bad_name"),
        ({"n": "a b", "v": 1}, "bad_name"),
        ({"v": 1}, "bad_name"),
        ({"n": "a", "v": "1"}, "wrong_type"),
        ({"n": "a", "v": True}, "wrong_type"),
        ({"n": "a", "vb": 1}, "wrong_type"),
    ],
)
def test_a_broken_record_is_refused_by_its_index_and_the_rest_resolve(
    record: object, reason: str
) -> None:
    records, refused = resolve([{"n": "a", "v": 1}, record, {"n": "b", "v": 2}], NOW)
    assert [r.index for r in records] == [0, 2]
    assert [(r.index, r.error.reason) for r in refused] == [(1, reason)]


# -- records to readings ------------------------------------------------------------------------


def test_a_gateway_pack_becomes_readings_in_canonical_units(packs: PackParser) -> None:
    result = packs.parse(pack(
        {"bn": "old-town/pm25/", "bt": NOW - 60, "bu": "ug/m3", "n": "pm-1", "v": 17.2},
        {"n": "pm-2", "t": 30, "u": "mg/m3", "v": 0.02},
        {"bn": "harbour/traffic_speed/", "n": "ts-1", "u": "m/s", "v": 10, "t": -10 + 60},
    ), NOW)
    assert result.refused == [] and result.records == 3
    assert result.readings == [
        (0, Reading("pm-1", "old-town", "pm25", 17.2, "ug/m3", NOW - 60)),
        (1, Reading("pm-2", "old-town", "pm25", pytest.approx(20.0), "ug/m3", NOW - 30)),
        (2, Reading("ts-1", "harbour", "traffic_speed", pytest.approx(36.0), "km/h", NOW - 10)),
    ]


def test_relative_times_are_anchored_at_reception(packs: PackParser) -> None:
    result = packs.parse(pack({"bn": "harbour/noise/n-1", "bu": "dBA", "v": 50, "t": -5},
                              {"v": 51}), NOW)
    assert [reading.ts for _, reading in result.readings] == [NOW - 5, NOW]


@pytest.mark.parametrize(
    ("record", "reason", "words"),
    [
        ({"n": "old-town/pm25", "v": 1, "u": "ug/m3"}, "bad_name", "<district>/<kind>"),
        ({"n": "old-town/pm25/a/b", "v": 1, "u": "ug/m3"}, "bad_name", "<district>/<kind>"),
        ({"n": "mars/pm25/pm-9", "v": 1, "u": "ug/m3"}, "unknown_district", "'mars'"),
        ({"n": "old-town/radon/pm-9", "v": 1, "u": "Bq"}, "unknown_kind", "'radon'"),
        ({"n": "old-town/pm25/pm-9", "v": 1}, "missing_field", "no unit"),
        ({"n": "old-town/pm25/pm-9", "v": 1, "u": "grains"}, "unknown_unit", "'grains'"),
        ({"n": "old-town/pm25/pm-9", "v": -4, "u": "ug/m3"}, "out_of_range", "-4.0"),
        ({"n": "old-town/pm25/pm-9", "vs": "high", "u": "ug/m3"}, "wrong_type", "numbers"),
        ({"n": "old-town/pm25/pm-9", "s": 10, "u": "ug/m3"}, "missing_field", "sum"),
        ({"n": "old-town/pm25/pm-9", "v": 1, "u": "ug/m3", "t": NOW + 3600},
         "future_timestamp", "ahead"),
    ],
)
def test_each_record_is_validated_as_a_single_reading(
    packs: PackParser, record: dict[str, object], reason: str, words: str
) -> None:
    good = {"n": "old-town/pm25/pm-1", "u": "ug/m3", "v": 5}
    result = packs.parse(pack(good, record, good), NOW)
    assert [index for index, _ in result.readings] == [0, 2]
    (refusal,) = result.refused
    assert (refusal.index, refusal.error.reason) == (1, reason)
    assert words in refusal.error.detail
    assert orjson.loads(refusal.error.payload)["n"] == record["n"], "the record, resolved"


def test_an_out_of_range_record_carries_its_rejection_for_device_health(
    packs: PackParser,
) -> None:
    result = packs.parse(pack({"bn": "riverside/water_level/wl-1", "bt": NOW - 1, "u": "m",
                               "v": 99}), NOW)
    (refusal,) = result.refused
    assert refusal.rejection == Rejection("riverside", "water_level", "wl-1", NOW - 1)


def test_a_non_finite_value_is_refused_not_crashed_on(packs: PackParser) -> None:
    result = packs.parse(b'[{"n": "old-town/pm25/pm-1", "u": "ug/m3", "v": NaN}]', NOW)
    assert reasons(result) == {0: "not_finite"}


# -- the property: every pack parses or is refused whole, nothing else ---------------------------

fields = st.sampled_from(["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd",
                          "s", "t", "ut", "x", "x_"])
names = st.sampled_from(["old-town/", "pm25/", "pm-1", "harbour/noise/n-1", "", "a b", "-x"])
values = (st.none() | st.booleans() | st.integers(-2**31, 2**31)
          | st.floats(allow_nan=False) | st.text(max_size=5) | names)
records = st.dictionaries(fields, values, max_size=6) | values


@given(st.lists(records, max_size=8))
@hsettings(max_examples=300, deadline=None)
def test_any_pack_gives_readings_and_refusals_by_index_or_one_refusal(
    packs: PackParser, raw: list[object]
) -> None:
    try:
        payload = orjson.dumps(raw)
    except TypeError:
        return
    try:
        result = packs.parse(payload, NOW)
    except InvalidReading as error:
        assert error.reason in {*REASONS, *SENML_REASONS}
        assert error.payload == payload
        return
    indexes = [i for i, _ in result.readings] + [r.index for r in result.refused]
    assert len(indexes) == len(set(indexes)) and set(indexes) <= set(range(len(raw)))
    for refusal in result.refused:
        assert refusal.error.reason in {*REASONS, *SENML_REASONS}
        assert refusal.error.detail and refusal.error.payload
    for _, reading in result.readings:
        assert math.isfinite(reading.value) and math.isfinite(reading.ts)
