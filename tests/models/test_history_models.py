"""History helpers: durations and times as people type them, and the resolution of a range."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.history import (
    STEP_S,
    Series,
    SeriesPoint,
    bucket_floor,
    choose_resolution,
    parse_duration,
    parse_time,
)

NOW = 1795669200.0  # 2026-11-26T05:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("1h", 3600.0), ("7d", 604800.0), ("2w", 1209600.0),
     ("1.5h", 5400.0), ("30", 30.0), (45, 45.0)],
)
def test_durations_in_the_units_people_type(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1y", "-1h", "1 hour", "nan"])
def test_a_bad_duration_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_times_are_now_a_duration_ago_or_iso() -> None:
    assert parse_time("now", now=NOW) == NOW
    assert parse_time("1h", now=NOW) == NOW - 3600
    assert parse_time("2026-11-26T04:00:00Z", now=NOW) == NOW - 3600
    assert parse_time("2026-11-26T05:00:00+01:00", now=NOW) == NOW - 3600
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_time("yesterday", now=NOW)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("2026-11-26T04:00:00", now=NOW)  # no zone


@pytest.mark.parametrize(
    ("span", "resolution"),
    [(60, "raw"), (3600, "raw"), (3601, "1m"), (86400, "1m"), (86401, "1h"),
     (60 * 86400, "1h"), (61 * 86400, "1d"), (3 * 365 * 86400, "1d")],
)
def test_the_resolution_follows_the_range(span: float, resolution: str) -> None:
    assert choose_resolution(NOW - span, NOW) == resolution


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        choose_resolution(NOW, NOW)


@given(
    since=st.floats(0, 4e9, allow_nan=False),
    span=st.floats(1, 1e9, allow_nan=False),
)
def test_a_chosen_resolution_never_gives_too_many_buckets(since: float, span: float) -> None:
    resolution = choose_resolution(since, since + span)
    if resolution not in ("raw", "1d"):
        assert span / STEP_S[resolution] <= 1440


def test_buckets_are_aligned_to_utc() -> None:
    ts = 1795669200.0 + 3 * 3600 + 125.5  # 2026-11-26T08:02:05.5Z
    assert bucket_floor(ts, "1m") == ts - 5.5
    assert bucket_floor(ts, "1h") == ts - 125.5
    assert bucket_floor(ts, "1d") == 1795651200.0  # 2026-11-26T00:00:00Z
    assert bucket_floor(ts, "raw") == ts


def test_series_records_name_district_series_and_resolution() -> None:
    series = Series(
        "old-town", "aqi", "indicators", "1h", NOW, NOW + 7200,
        (SeriesPoint(NOW, 42.5, 40.0, 45.0, 12),),
    )
    assert series.records() == [{
        "district": "old-town", "indicator": "aqi", "resolution": "1h",
        "ts": "2026-11-26T05:00:00.000Z", "value": 42.5, "min": 40.0, "max": 45.0, "count": 12,
    }]
