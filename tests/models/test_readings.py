"""The payload parser: every device payload becomes a Reading or an InvalidReading, nothing else."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.errors import InvalidReading
from models.readings import REASONS, Reading, ReadingParser, encode
from settings.config import Settings

NOW = 1_795_669_200.0  # 2026-11-26T05:00:00Z


@pytest.fixture(scope="module")
def parser(base_settings: Settings) -> ReadingParser:
    return ReadingParser(base_settings.kinds, base_settings.district_ids(), max_future_s=300)


def payload(**fields) -> bytes:
    record = {"device_id": "pm-1", "kind": "pm25", "value": 12.5, "unit": "ug/m3",
              "ts": "2026-11-26T04:59:59.500Z"}
    record.update(fields)
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


def test_a_good_payload_becomes_a_reading_in_the_canonical_unit(parser: ReadingParser) -> None:
    reading = parser.parse(payload(value=0.02, unit="mg/m3", seq=7), "city/harbour/pm25/pm-1", NOW)
    assert reading == Reading("pm-1", "harbour", "pm25", pytest.approx(20.0), "ug/m3",
                              NOW - 0.5, 7)
    assert reading.time.isoformat() == "2026-11-26T04:59:59.500000+00:00"


def test_the_kafka_record_parses_back_to_the_same_reading(parser: ReadingParser) -> None:
    reading = parser.parse(payload(seq=3), "city/harbour/pm25/pm-1", NOW)
    assert parser.parse(encode(reading), None, NOW) == reading


def test_epoch_timestamps_and_offsets_are_accepted(parser: ReadingParser) -> None:
    assert parser.parse(payload(ts=NOW - 10), "city/harbour/pm25/pm-1", NOW).ts == NOW - 10
    offset = parser.parse(payload(ts="2026-11-26T06:00:00+01:00"), "city/harbour/pm25/pm-1", NOW)
    assert offset.ts == NOW


@pytest.mark.parametrize(
    ("data", "topic", "reason", "words"),
    [
        (b"{oops", "city/harbour/pm25/pm-1", "invalid_json", "not valid JSON"),
        (b"[1, 2]", "city/harbour/pm25/pm-1", "not_an_object", "list"),
        (payload(value=...), "city/harbour/pm25/pm-1", "missing_field", "'value'"),
        (payload(value="12"), "city/harbour/pm25/pm-1", "wrong_type", "'value'"),
        (payload(unit="grains"), "city/harbour/pm25/pm-1", "unknown_unit", "'grains'"),
        (payload(value=-1), "city/harbour/pm25/pm-1", "out_of_range", "-1.0"),
        (payload(ts="2026-11-26T05:00:00"), "city/harbour/pm25/pm-1", "bad_timestamp", "zone"),
        (payload(ts="yesterday"), "city/harbour/pm25/pm-1", "bad_timestamp", "'yesterday'"),
        (payload(ts=NOW + 3600), "city/harbour/pm25/pm-1", "future_timestamp", "3600 s ahead"),
        (payload(), "city/atlantis/pm25/pm-1", "unknown_district", "'atlantis'"),
        (payload(kind="ozone"), "city/harbour/ozone/pm-1", "unknown_kind", "'ozone'"),
        (payload(), "city/harbour/no2/pm-1", "topic_mismatch", "pm25/pm-1"),
        (payload(), "elsewhere/pm25/pm-1", "bad_topic", "elsewhere"),
        (payload(seq=-3), "city/harbour/pm25/pm-1", "wrong_type", "seq"),
        (b'{"device_id":"pm-1","kind":"pm25","value":NaN,"unit":"ug/m3","ts":1}',
         "city/harbour/pm25/pm-1", "not_finite", "nan"),
        (b'{"device_id":"pm-1","kind":"pm25","value":Infinity,"unit":"ug/m3","ts":1}',
         "city/harbour/pm25/pm-1", "not_finite", "inf"),
        (b'{"device_id":"pm-1","kind":"pm25","value":1' + b"0" * 400 + b',"unit":"ug/m3","ts":1}',
         "city/harbour/pm25/pm-1", "not_finite", "too large"),
        (b"x" * 5000, "city/harbour/pm25/pm-1", "oversized", "5000 bytes"),
    ],
)
def test_bad_payloads_say_why(parser, data: bytes, topic: str, reason: str, words: str) -> None:
    with pytest.raises(InvalidReading) as info:
        parser.parse(data, topic, NOW)
    assert info.value.reason == reason
    assert words in info.value.detail
    assert info.value.payload == data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "device_id": json_values | st.just("pm-1"),
        "kind": json_values | st.sampled_from(["pm25", "noise"]),
        "value": json_values | st.floats(-10, 2000),
        "unit": json_values | st.sampled_from(["ug/m3", "mg/m3", "dBA"]),
        "ts": json_values | st.floats(0, 2e9) | st.just("2026-11-26T04:00:00Z"),
        "seq": json_values,
        "district": json_values | st.just("harbour"),
    },
)


@hsettings(max_examples=500, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=200), fields.map(lambda f: json_dumps(f))),
    topic=st.one_of(st.none(), st.just("city/harbour/pm25/pm-1"), st.text(max_size=30)),
)
def test_any_payload_parses_or_raises_invalid_reading(parser, data: bytes, topic) -> None:
    try:
        reading = parser.parse(data, topic, NOW)
    except InvalidReading as error:
        assert error.reason in REASONS
        assert error.payload == data
    else:
        assert math.isfinite(reading.value) and reading.kind in ("pm25", "noise")
        low, high = ((0, 1000) if reading.kind == "pm25" else (20, 140))
        assert low <= reading.value <= high


def json_dumps(record: dict) -> bytes:
    """Any JSON a device might send, including big integers and NaN that orjson refuses."""
    return json.dumps(record).encode()
