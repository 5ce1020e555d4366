"""Noise: Leq is an energy average; limits follow the zone class and the local hour."""

from __future__ import annotations

import pickle
import statistics
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.indicators.levels import InvalidIndicatorInput
from models.indicators.noise import (
    GB3096_2008,
    LeqAccumulator,
    NoiseLimit,
    NoiseParams,
    RollingLeq,
    is_daytime,
    leq,
    limit_at,
    local_hour,
    noise_indicator,
)

BERLIN = ZoneInfo("Europe/Berlin")
levels = st.floats(20.0, 140.0)


def test_leq_averages_energy_not_decibels() -> None:
    # 10 * log10((10**6 + 10**7) / 2) = 10 * log10(5.5e6) = 67.40
    assert leq([60.0, 70.0]) == pytest.approx(67.40, abs=0.005)
    assert leq([60.0, 70.0]) != pytest.approx(65.0, abs=0.5)


def test_leq_weights_each_level_by_its_duration() -> None:
    # 70 dB for 1 s and 50 dB for 9 s: 10 * log10((1e7 + 9 * 1e5) / 10) = 60.37
    assert leq([70.0, 50.0], [1.0, 9.0]) == pytest.approx(60.37, abs=0.005)
    assert leq([55.0, 55.0, 55.0]) == pytest.approx(55.0)


def test_window_parts_merge_into_the_same_leq() -> None:
    first, second, whole = LeqAccumulator(), LeqAccumulator(), LeqAccumulator()
    for level in (52.0, 61.5, 58.0):
        first.add(level, 5.0)
        whole.add(level, 5.0)
    for level in (73.0, 49.0):
        second.add(level, 5.0)
        whole.add(level, 5.0)
    first.merge(second)
    assert first.leq == pytest.approx(whole.leq)
    assert (first.count, first.duration_s, first.min_db, first.max_db) == (5, 25.0, 49.0, 73.0)
    assert pickle.loads(pickle.dumps(first)).leq == pytest.approx(whole.leq)


def test_an_empty_window_has_no_leq() -> None:
    with pytest.raises(InvalidIndicatorInput, match="holds no levels"):
        _ = LeqAccumulator().leq
    with pytest.raises(InvalidIndicatorInput, match="durations"):
        leq([60.0, 70.0], [1.0])


@given(st.lists(levels, min_size=1, max_size=50))
def test_leq_lies_between_the_quietest_and_loudest_and_above_the_plain_mean(values) -> None:
    result = leq(values)
    assert min(values) <= result <= max(values)
    assert result >= statistics.fmean(values) - 1e-9


def test_rolling_leq_over_an_hour_of_two_halves() -> None:
    rolling = RollingLeq(bucket_s=60.0, windows_s=(3600.0,))
    for minute in range(60):
        rolling.add(minute * 60.0, 60.0 if minute < 30 else 70.0, duration_s=60.0)
    assert rolling.leq(3600.0) == pytest.approx(67.40, abs=0.005)
    assert rolling.leq(3600.0, now=3 * 3600.0) is None


def test_the_gb_3096_2008_table() -> None:
    assert {zone: (lim.day_db, lim.night_db) for zone, lim in GB3096_2008.items()} == {
        "0": (50, 40), "1": (55, 45), "2": (60, 50), "3": (65, 55), "4a": (70, 55), "4b": (70, 60)
    }


@pytest.mark.parametrize(("hour", "day"), [(0, False), (5, False), (6, True), (13, True),
                                           (21, True), (22, False), (23, False)])
def test_day_runs_from_6_to_22_local_time(hour: int, day: bool) -> None:
    assert is_daytime(hour, NoiseParams.for_zone("1")) is day


@pytest.mark.parametrize(
    ("utc", "hour", "period", "limit"),
    [
        (datetime(2026, 11, 26, 5, 0, tzinfo=UTC), 6, "day", 70.0),       # CET: 06:00
        (datetime(2026, 11, 26, 4, 59, 59, tzinfo=UTC), 5, "night", 60.0),
        (datetime(2026, 7, 1, 4, 0, tzinfo=UTC), 6, "day", 70.0),         # CEST: 06:00
        (datetime(2026, 7, 1, 20, 0, tzinfo=UTC), 22, "night", 60.0),
        (datetime(2026, 7, 1, 19, 59, tzinfo=UTC), 21, "day", 70.0),
    ],
)
def test_the_limit_follows_the_local_hour(utc: datetime, hour: int, period: str, limit) -> None:
    params = NoiseParams.for_zone("4b")
    assert local_hour(utc.timestamp(), BERLIN) == hour
    assert limit_at(hour, params) == (period, limit)


@pytest.mark.parametrize(
    ("leq_db", "hour", "level", "score", "excess"),
    [
        (50.0, 14, "within", 87.5, -5.0),   # 5 dB under the day limit of 55
        (55.0, 14, "within", 75.0, 0.0),    # reaching the limit is allowed
        (55.1, 14, "over", 74.5, 0.1),
        (50.0, 23, "over", 50.0, 5.0),      # same level at night: limit 45
        (56.0, 2, "severe", 22.5, 11.0),    # 25 at +10, 0 at +20: 25 - 25 * 1 / 10
    ],
)
def test_noise_indicator_against_the_zone_limit(leq_db, hour, level, score, excess) -> None:
    params = NoiseParams.for_zone("1")
    result = noise_indicator(leq_db, hour, params)
    assert (result.name, result.unit, result.level) == ("noise", "dBA", level)
    assert result.input("excess_db") == pytest.approx(excess)
    assert result.input("zone") == "1"
    assert result.score == pytest.approx(score)


def test_custom_limits_and_hours_are_honoured() -> None:
    params = NoiseParams.for_zone("quiet", {"quiet": NoiseLimit(45.0, 35.0)}, night_start_hour=20)
    assert limit_at(20, params) == ("night", 35.0)
    with pytest.raises(InvalidIndicatorInput) as info:
        NoiseParams.for_zone("5")
    assert info.value.name == "zone"
    assert "'4b'" in str(info.value)
