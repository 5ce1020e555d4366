"""Traffic: travel-time index and slow-segment share, with levels at their boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.indicators.levels import InvalidIndicatorInput
from models.indicators.traffic import LEVELS, TrafficParams, segment_share, travel_time_index

PARAMS = TrafficParams(free_flow_kmh=60.0)  # bounds 1.25 / 1.5 / 2.0, worst 3.0, cap 10


@pytest.mark.parametrize(
    ("observed", "index", "level", "score"),
    [
        (60.0, 1.0, "free", 100.0),
        (75.0, 0.8, "free", 100.0),         # faster than free flow
        (54.0, 1.1111, "free", 88.889),     # 100 - 25 * 0.1111 / 0.25
        (48.1, 1.2474, "free", 75.26),
        (48.0, 1.25, "slow", 75.0),         # on the bound: the worse level
        (40.0, 1.5, "congested", 50.0),
        (30.1, 1.9934, "congested", 25.33),
        (30.0, 2.0, "jammed", 25.0),
        (24.0, 2.5, "jammed", 12.5),
        (20.0, 3.0, "jammed", 0.0),
        (0.0, 10.0, "jammed", 0.0),         # a standstill reads the cap, not infinity
    ],
)
def test_travel_time_index_and_its_level(observed, index, level, score) -> None:
    result = travel_time_index(observed, PARAMS)
    assert result.value == pytest.approx(index, abs=1e-4)
    assert (result.name, result.unit, result.level) == ("traffic", "tti", level)
    assert result.score == pytest.approx(score, abs=1e-2)
    assert result.input("free_flow_kmh") == 60.0
    assert result.input("observed_kmh") == observed


def test_segment_share_counts_segments_strictly_below_the_fraction_of_free_flow() -> None:
    speeds = [58, 29.9, 30, 45, 12, 61, 50, 40, 55, 35]  # threshold 30 km/h: 29.9 and 12
    result = segment_share(speeds, PARAMS)
    assert result.value == pytest.approx(0.2)
    assert result.level == "slow"
    assert result.score == pytest.approx(58.333, abs=1e-3)  # 75 - 25 * 0.1 / 0.15
    assert dict(result.inputs) == {"method": "segment_share", "segments": 10,
                                   "slow_segments": 2, "threshold_kmh": 30.0,
                                   "free_flow_kmh": 60.0}


@pytest.mark.parametrize(("slow", "level"), [(0, "free"), (1, "slow"), (2, "slow"),
                                             (3, "congested"), (5, "jammed"), (8, "jammed")])
def test_segment_share_levels_at_their_bounds(slow: int, level: str) -> None:
    params = TrafficParams(free_flow_kmh=60.0, share_bounds=(0.1, 0.3, 0.5))
    speeds = [10.0] * slow + [60.0] * (10 - slow)
    assert segment_share(speeds, params).level == level


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: TrafficParams(free_flow_kmh=0.0), "free_flow_kmh"),
        (lambda: TrafficParams(free_flow_kmh=50.0, tti_bounds=(1.5, 1.25, 2.0)), "tti_bounds"),
        (lambda: TrafficParams(free_flow_kmh=50.0, slow_fraction=1.5), "slow_fraction"),
        (lambda: travel_time_index(-3.0, PARAMS), "observed_kmh"),
        (lambda: travel_time_index(float("nan"), PARAMS), "observed_kmh"),
        (lambda: segment_share([], PARAMS), "speeds_kmh"),
    ],
)
def test_bad_inputs_name_the_parameter(call, name: str) -> None:
    with pytest.raises(InvalidIndicatorInput) as info:
        call()
    assert info.value.name == name


@given(st.floats(0.0, 300.0))
def test_any_speed_gives_a_known_level_and_a_score_within_0_and_100(observed: float) -> None:
    result = travel_time_index(observed, PARAMS)
    assert result.level in LEVELS
    assert 0.0 <= result.score <= 100.0
    assert 0.0 < result.value <= PARAMS.max_index
