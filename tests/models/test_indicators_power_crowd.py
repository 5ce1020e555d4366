"""Power load ratios per substation and district; crowd density against safe capacity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.indicators.crowd import CrowdParams, crowd_indicator, density
from models.indicators.levels import InvalidIndicatorInput
from models.indicators.power import PowerParams, district_load, substation_load

POWER = PowerParams()  # 0.7 / 0.9 / 1.0, worst 1.2


@pytest.mark.parametrize(
    ("load", "ratio", "level", "score"),
    [
        (0.0, 0.0, "normal", 100.0),
        (35.0, 0.35, "normal", 87.5),
        (69.9, 0.699, "normal", 75.036),
        (70.0, 0.7, "elevated", 75.0),
        (88.0, 0.88, "elevated", 52.5),        # 75 - 25 * 0.18 / 0.2
        (90.0, 0.9, "high", 50.0),
        (100.0, 1.0, "overloaded", 25.0),      # at capacity
        (110.0, 1.1, "overloaded", 12.5),
        (130.0, 1.3, "overloaded", 0.0),
    ],
)
def test_substation_load_ratio(load, ratio, level, score) -> None:
    result = substation_load(load, 100.0, POWER, substation="sub-7")
    assert (result.name, result.unit, result.level) == ("power", "ratio", level)
    assert result.value == pytest.approx(ratio)
    assert result.score == pytest.approx(score, abs=1e-3)
    assert dict(result.inputs) == {"substation": "sub-7", "load_mw": load, "capacity_mw": 100.0}


def test_district_ratio_is_total_load_over_the_reporting_substations_capacity() -> None:
    capacities = {"sub-1": 100.0, "sub-2": 100.0, "sub-3": 50.0}   # sub-3 did not report
    result = district_load({"sub-1": 60.0, "sub-2": 95.0}, capacities, POWER)
    assert result.value == pytest.approx(0.775)
    assert result.level == "elevated"
    assert result.score == pytest.approx(65.625)                    # 75 - 25 * 0.075 / 0.2
    assert result.input("worst_substation") == "sub-2"
    assert result.input("worst_ratio") == pytest.approx(0.95)
    assert result.input("capacity_mw") == 200.0


def test_a_substation_without_capacity_is_named() -> None:
    with pytest.raises(InvalidIndicatorInput) as info:
        district_load({"sub-9": 10.0}, {"sub-1": 100.0}, POWER)
    assert "sub-9" in str(info.value)
    with pytest.raises(InvalidIndicatorInput, match="capacity_mw"):
        substation_load(10.0, 0.0, POWER)


CROWD = CrowdParams(safe_density=2.0)  # 0.5 / 0.8 / 1.0 of safe, worst 1.5


@pytest.mark.parametrize(
    ("value", "level", "score"),
    [
        (0.0, "comfortable", 100.0),
        (0.99, "comfortable", 75.25),
        (1.0, "busy", 75.0),
        (1.6, "crowded", 50.0),
        (1.7, "crowded", 43.75),               # ratio 0.85: 50 - 25 * 0.05 / 0.2
        (2.0, "over_capacity", 25.0),
        (3.0, "over_capacity", 0.0),
    ],
)
def test_crowd_levels_against_the_safe_density(value, level, score) -> None:
    result = crowd_indicator(value, CROWD)
    assert (result.name, result.unit, result.level) == ("crowd", "persons/m2", level)
    assert result.score == pytest.approx(score)
    assert result.input("ratio") == pytest.approx(value / 2.0)


def test_safe_capacity_and_density_from_head_counts() -> None:
    params = CrowdParams.from_capacity(800, 400.0)
    assert params.safe_density == 2.0
    assert density(1200, 400.0) == 3.0
    assert crowd_indicator(density(1200, 400.0), params).level == "over_capacity"
    with pytest.raises(InvalidIndicatorInput, match="area_m2"):
        density(10, 0.0)


@given(st.floats(0.0, 1e4), st.floats(0.01, 1e4))
def test_power_scores_stay_within_0_and_100(load: float, capacity: float) -> None:
    assert 0.0 <= substation_load(load, capacity, POWER).score <= 100.0
