"""Level scales: where each level begins, and the piecewise-linear 0-100 sub-score."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.errors import CityheartError
from models.indicators.levels import Indicator, InvalidIndicatorInput, Scale

UP = Scale(("a", "b", "c", "d"), bounds=(10.0, 20.0, 40.0), best=0.0, worst=80.0)
DOWN = Scale(("ok", "low", "very_low"), bounds=(50.0, 20.0), best=80.0, worst=0.0)


@pytest.mark.parametrize(
    ("value", "level", "score"),
    [
        (-5.0, "a", 100.0),
        (0.0, "a", 100.0),
        (5.0, "a", 87.5),       # halfway from best (100) to the first bound (75)
        (10.0, "b", 75.0),      # on a bound: the worse level
        (15.0, "b", 62.5),
        (20.0, "c", 50.0),
        (40.0, "d", 25.0),
        (60.0, "d", 12.5),
        (80.0, "d", 0.0),
        (500.0, "d", 0.0),
    ],
)
def test_an_increasing_scale(value: float, level: str, score: float) -> None:
    assert UP.level(value) == level
    assert UP.score(value) == pytest.approx(score)


@pytest.mark.parametrize(
    ("value", "level", "score"),
    [(90.0, "ok", 100.0), (65.0, "ok", 83.333), (50.0, "low", 66.667), (35.0, "low", 50.0),
     (20.0, "very_low", 33.333), (10.0, "very_low", 16.667), (-1.0, "very_low", 0.0)],
)
def test_a_decreasing_scale_treats_lower_as_worse(value: float, level: str, score: float) -> None:
    assert DOWN.level(value) == level
    assert DOWN.score(value) == pytest.approx(score, abs=1e-3)


def test_a_limit_that_may_be_reached_keeps_the_better_level_on_its_bound() -> None:
    scale = Scale(("within", "over"), bounds=(0.0,), best=-10.0, worst=10.0, worse_on_bound=False)
    assert scale.level(0.0) == "within"
    assert scale.level(0.001) == "over"


@pytest.mark.parametrize(
    ("names", "bounds", "best", "worst", "words"),
    [
        (("a", "b"), (1.0, 2.0), 0.0, 3.0, "need 1 bounds"),
        (("a",), (), 0.0, 3.0, "two or more"),
        (("a", "a"), (1.0,), 0.0, 3.0, "distinct"),
        (("a", "b", "c"), (2.0, 1.0), 0.0, 3.0, "strictly monotonic"),
        (("a", "b"), (5.0,), 0.0, 3.0, "strictly monotonic"),
    ],
)
def test_bad_scales_are_refused_with_the_reason(names, bounds, best, worst, words) -> None:
    with pytest.raises(InvalidIndicatorInput) as info:
        Scale(names, bounds, best, worst)
    assert words in str(info.value)
    assert isinstance(info.value, CityheartError)


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_the_score_stays_within_0_and_100_and_never_improves_as_the_value_worsens(
    first: float, second: float
) -> None:
    low, high = sorted((first, second))
    assert 0.0 <= UP.score(high) <= UP.score(low) <= 100.0
    assert UP.index(low) <= UP.index(high)


def test_an_indicator_explains_itself_and_pickles() -> None:
    result = Indicator.of("traffic", 1.5, "tti", "congested", 50.0, observed_kmh=40.0)
    assert result.input("observed_kmh") == 40.0
    assert result.as_dict() == {"name": "traffic", "value": 1.5, "unit": "tti",
                                "level": "congested", "score": 50.0,
                                "inputs": {"observed_kmh": 40.0}}
    assert pickle.loads(pickle.dumps(result)) == result
    with pytest.raises(KeyError, match="'speed'"):
        result.input("speed")
