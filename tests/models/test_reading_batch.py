"""The readings record: a batch decodes to exactly the readings encoded; anything else is
refused with a dead-letter reason, or recognised as a single reading."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.errors import InvalidReading
from models.reading_batch import ReadingBatch, decode_batch, readings_in
from models.readings import REASONS, Reading, encode

T = 1_795_669_200.125

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=12)
readings = st.builds(
    Reading, device_id=names, district=st.sampled_from(["harbour", "old-town"]),
    kind=st.sampled_from(["pm25", "noise"]), value=st.floats(allow_nan=False,
                                                              allow_infinity=False),
    unit=st.sampled_from(["ug/m3", "dBA"]),
    ts=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    seq=st.none() | st.integers(min_value=0, max_value=2**53),
)


@given(st.lists(readings, max_size=30))
@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_batch_decodes_to_exactly_the_readings_it_holds(batch: list[Reading]) -> None:
    decoded = decode_batch(ReadingBatch.of(batch).encode())
    assert decoded is not None
    assert decoded.readings() == batch
    assert [decoded.reading(i) for i in range(len(decoded))] == batch


def test_the_record_is_columnar_with_a_dictionary_of_series() -> None:
    batch = [Reading("pm-1", "harbour", "pm25", 17.2, "ug/m3", T, 42),
             Reading("pm-2", "harbour", "pm25", 9.5, "ug/m3", T + 1),
             Reading("nz-7", "old-town", "noise", 61.0, "dBA", T + 2, 7)]
    assert orjson.loads(ReadingBatch.of(batch).encode()) == {
        "v": 1, "series": [["harbour", "pm25", "ug/m3"], ["old-town", "noise", "dBA"]],
        "series_ix": [0, 0, 1], "device_id": ["pm-1", "pm-2", "nz-7"],
        "value": [17.2, 9.5, 61.0], "ts": [T, T + 1, T + 2], "seq": [42, None, 7],
    }
    without_seq = orjson.loads(ReadingBatch.of(batch[1:2]).encode())
    assert "seq" not in without_seq
    # a third of the bytes of the same readings one record each
    many = [Reading(f"pm25-harbour-{n:03}", "harbour", "pm25", 10.0 + n / 7, "ug/m3", T + n, n)
            for n in range(500)]
    assert len(ReadingBatch.of(many).encode()) < 0.5 * sum(len(encode(r)) for r in many)


def test_a_single_readings_json_is_not_a_batch_but_still_read() -> None:
    reading = Reading("pm-1", "harbour", "pm25", 17.2, "ug/m3", T, 3)
    assert decode_batch(encode(reading)) is None
    assert readings_in(encode(reading)) == [reading]
    assert decode_batch(b"{not json") is None, "the parser says what is wrong with it"


@pytest.mark.parametrize(("value", "reason", "words"), [
    (b'{"v": 2, "series": []}', "unknown_format", "v=2 is not one of [1]"),
    (b'{"v": "1"}', "unknown_format", "v='1' is not one of [1]"),
    (b'{"v": 1, "series": [["harbour", "pm25"]], "series_ix": [], "device_id": [], '
     b'"value": [], "ts": []}', "bad_batch", "[district, kind, unit]"),
    (b'{"v": 1, "series": [["harbour", "pm25", "ug/m3"]], "series_ix": [0, 0], '
     b'"device_id": ["a"], "value": [1.0], "ts": [1.0]}', "bad_batch", "lengths do not match"),
    (b'{"v": 1, "series": [["harbour", "pm25", "ug/m3"]], "series_ix": [1], '
     b'"device_id": ["a"], "value": [1.0], "ts": [1.0]}', "bad_batch", "not an index"),
    (b'{"v": 1, "series": [["harbour", "pm25", "ug/m3"]], "series_ix": [0], '
     b'"device_id": ["a"], "value": ["1"], "ts": [1.0]}', "bad_batch", "'value'"),
    (b'{"v": 1, "series": [["harbour", "pm25", "ug/m3"]], "series_ix": [0], '
     b'"device_id": [""], "value": [1.0], "ts": [1.0]}', "bad_batch", "'device_id'"),
    (b'{"v": 1, "series": [["harbour", "pm25", "ug/m3"]], "series_ix": [0], '
     b'"device_id": ["a"], "value": [1.0], "ts": [1.0], "seq": [-1]}', "bad_batch", "'seq'"),
])
def test_a_record_that_is_no_batch_of_a_known_format_is_refused_with_its_reason(
    value: bytes, reason: str, words: str
) -> None:
    with pytest.raises(InvalidReading) as caught:
        decode_batch(value)
    assert (caught.value.reason, caught.value.payload) == (reason, value)
    assert words in caught.value.detail
    assert reason in REASONS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["v", "series", "series_ix", "device_id", "value", "ts",
                                       "seq"]), children, max_size=7),
    max_leaves=12,
)


@given(json_values)
@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_record_is_a_batch_not_a_batch_or_refused_nothing_else(value: object) -> None:
    try:
        payload = orjson.dumps(value)
    except TypeError:  # an integer orjson cannot write
        return
    try:
        decoded = decode_batch(payload)
    except InvalidReading as exc:
        assert exc.reason in ("unknown_format", "bad_batch")
        return
    if decoded is not None:
        decoded.readings()  # whatever decoded reads back
